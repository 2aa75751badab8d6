rule forces:
    input:
        mapping="results/mapping/{system}/{mapping}.parquet",
        references=get_reference_trajectories,
    output:
        "results/cg/{system}/{mapping}.h5",
    log:
        "logs/forces/{system}/{mapping}.log",
    conda:
        "../../envs/cgpipe.yaml"
    params:
        config=config_json("forces"),
    shell:
        "cgpipe forces {input.references:q} --mapping {input.mapping:q}"
        " --output {output:q} --config {params.config:q} 2> {log:q}"
