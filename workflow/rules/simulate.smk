rule simulate:
    input:
        model=paths.MODEL,
        cg=get_cg,
        mapping=get_mapping,
    output:
        traj=paths.SIMULATION,
        health=paths.HEALTH,
    log:
        paths.log("simulate", paths.SIMULATE_DIR),
    benchmark:
        paths.benchmark("simulate", paths.SIMULATE_DIR)
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=1,
    params:
        config=config_json("simulate"),
        output_dir=subpath(output.traj, parent=True),
    shell:
        "cgpipe simulate --model-file {input.model:q} --cg {input.cg:q}"
        " --mapping {input.mapping:q} --fold {wildcards.fold}"
        " --output-dir {params.output_dir:q} --config {params.config:q}"
        " --threads {threads} 2> {log:q}"
