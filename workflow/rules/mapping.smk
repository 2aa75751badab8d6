rule mapping:
    input:
        expand(paths.REFERENCE, i=0, allow_missing=True),
    output:
        paths.MAPPING,
    log:
        paths.log("mapping", paths.MAPPING),
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        config=config_json("mapping"),
    shell:
        "cgpipe mapping {input:q} --mapping {wildcards.mapping}"
        " --output {output:q} --config {params.config:q} 2> {log:q}"
