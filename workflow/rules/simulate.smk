rule simulate:
    input:
        model="results/train/{system}/{mapping}/{model}/fold{fold}/model.pt",
        cg="results/cg/{system}/{mapping}.h5",
        mapping="results/mapping/{system}/{mapping}.parquet",
    output:
        traj="results/simulate/{system}/{mapping}/{model}/fold{fold}/traj.h5",
        health="results/simulate/{system}/{mapping}/{model}/fold{fold}/health.parquet",
    log:
        "logs/simulate/{system}/{mapping}/{model}/fold{fold}.log",
    benchmark:
        "benchmarks/simulate/{system}/{mapping}/{model}/fold{fold}.tsv"
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=1,
    params:
        config=config_json("simulate", "train"),
        output_dir=subpath(output.traj, parent=True),
    shell:
        "cgpipe simulate --model-file {input.model:q} --cg {input.cg:q}"
        " --mapping {input.mapping:q} --fold {wildcards.fold}"
        " --output-dir {params.output_dir:q} --config {params.config:q}"
        " --threads {threads} 2> {log:q}"
