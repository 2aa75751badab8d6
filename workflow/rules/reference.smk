rule reference:
    output:
        "results/reference/{system}/traj_{i}.h5",
    log:
        "logs/reference/{system}/traj_{i}.log",
    benchmark:
        "benchmarks/reference/{system}/traj_{i}.tsv"
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        structure=get_structure,
        config=config_json("reference"),
    shell:
        "cgpipe reference --structure {params.structure:q} --system {wildcards.system}"
        " --index {wildcards.i} --output {output:q} --config {params.config:q}"
        " --threads {threads} 2> {log:q}"
