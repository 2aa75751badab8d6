rule forces:
    input:
        mapping="results/mapping/{system}/{mapping}.parquet",
        references=get_reference_trajectories,
    output:
        "results/cg/{system}/{mapping}.h5",
    log:
        "logs/forces/{system}/{mapping}.log",
    benchmark:
        "benchmarks/forces/{system}/{mapping}.tsv"
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
