rule backmap_fit:
    input:
        mapping=get_mapping,
        references=get_reference_trajectories,
        structure=get_structure,
    output:
        backmapper=paths.BACKMAPPER,
        heldout=paths.BACKMAP_HELDOUT,
    log:
        paths.log("backmap-fit", paths.BACKMAPPER_DIR),
    benchmark:
        paths.benchmark("backmap-fit", paths.BACKMAPPER_DIR)
    conda:
        "../../envs/backmap.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=1,
    params:
        config=config_json("backmap"),
        output_dir=subpath(output.backmapper, parent=True),
        structure=structure_option,
    shell:
        "cgpipe backmap-fit {input.references:q} --mapping {input.mapping:q}"
        " --fold {wildcards.fold} --method {wildcards.backmapper} {params.structure}"
        " --output-dir {params.output_dir:q} --config {params.config:q}"
        " --threads {threads} 2> {log:q}"


rule backmap:
    input:
        simulation=paths.SIMULATION,
        backmapper=paths.BACKMAPPER,
        references=get_reference_trajectories,
        structure=get_structure,
    output:
        traj=paths.BACKMAPPED,
        table=paths.BACKMAP_TABLE,
    log:
        paths.log("backmap", paths.BACKMAP_DIR),
    benchmark:
        paths.benchmark("backmap", paths.BACKMAP_DIR)
    conda:
        "../../envs/backmap.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        config=config_json("backmap"),
        output_dir=subpath(output.traj, parent=True),
        structure=structure_option,
    shell:
        "cgpipe backmap {input.references:q} --simulation {input.simulation:q}"
        " --backmapper {input.backmapper:q} --fold {wildcards.fold} {params.structure}"
        " --output-dir {params.output_dir:q} --config {params.config:q} 2> {log:q}"
