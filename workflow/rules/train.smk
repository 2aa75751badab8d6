rule train:
    input:
        cg="results/cg/{system}/{mapping}.h5",
        mapping="results/mapping/{system}/{mapping}.parquet",
    output:
        model="results/train/{system}/{mapping}/{model}/fold{fold}/model.pt",
        losses=report(
            "results/train/{system}/{mapping}/{model}/fold{fold}/losses.parquet",
            caption="../report/losses.rst",
            category="Training",
        ),
    log:
        "logs/train/{system}/{mapping}/{model}/fold{fold}.log",
    benchmark:
        "benchmarks/train/{system}/{mapping}/{model}/fold{fold}.tsv"
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=1,
    params:
        config=config_json("train"),
        output_dir=subpath(output.model, parent=True),
    shell:
        "cgpipe train --cg {input.cg:q} --mapping {input.mapping:q} --model {wildcards.model}"
        " --fold {wildcards.fold} --output-dir {params.output_dir:q}"
        " --config {params.config:q} --threads {threads} 2> {log:q}"
