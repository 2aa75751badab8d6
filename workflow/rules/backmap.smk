rule backmap:
    input:
        simulation="results/simulate/{system}/{mapping}/{model}/fold{fold}/traj.h5",
        mapping="results/mapping/{system}/{mapping}.parquet",
        references=get_reference_trajectories,
    output:
        traj="results/backmap/{system}/{mapping}/{model}/fold{fold}/traj.h5",
        table="results/backmap/{system}/{mapping}/{model}/fold{fold}/backmap.parquet",
    log:
        "logs/backmap/{system}/{mapping}/{model}/fold{fold}.log",
    benchmark:
        "benchmarks/backmap/{system}/{mapping}/{model}/fold{fold}.tsv"
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        config=config_json("backmap", "train"),
        output_dir=subpath(output.traj, parent=True),
    shell:
        "cgpipe backmap {input.references:q} --simulation {input.simulation:q}"
        " --mapping {input.mapping:q} --fold {wildcards.fold}"
        " --output-dir {params.output_dir:q} --config {params.config:q} 2> {log:q}"
