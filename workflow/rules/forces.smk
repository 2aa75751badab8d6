rule forces:
    input:
        mapping=paths.MAPPING,
        references=get_reference_trajectories,
    output:
        paths.CG,
    log:
        paths.log("forces", paths.CG),
    benchmark:
        paths.benchmark("forces", paths.CG)
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        config=config_json("forces"),
    shell:
        "cgpipe forces {input.references:q} --mapping {input.mapping:q}"
        " --output {output:q} --config {params.config:q} 2> {log:q}"
