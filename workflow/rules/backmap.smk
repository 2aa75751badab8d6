rule backmap:
    input:
        simulation=paths.SIMULATION,
        mapping=get_mapping,
        references=get_reference_trajectories,
    output:
        traj=paths.BACKMAPPED,
        table=paths.BACKMAP_TABLE,
    log:
        paths.log("backmap", paths.BACKMAP_DIR),
    benchmark:
        paths.benchmark("backmap", paths.BACKMAP_DIR)
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        config=config_json("backmap"),
        output_dir=subpath(output.traj, parent=True),
    shell:
        "cgpipe backmap {input.references:q} --simulation {input.simulation:q}"
        " --mapping {input.mapping:q} --fold {wildcards.fold}"
        " --output-dir {params.output_dir:q} --config {params.config:q} 2> {log:q}"
