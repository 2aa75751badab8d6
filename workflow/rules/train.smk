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
    params:
        config=config_json("train"),
        output_dir=subpath(output.model, parent=True),
    log:
        "logs/train/{system}/{mapping}/{model}/fold{fold}.log",
    benchmark:
        "benchmarks/train/{system}/{mapping}/{model}/fold{fold}.tsv"
    threads: 1
    resources:
        gpu=1,
    conda:
        "../../envs/cgpipe.yaml"
    shell:
        "cgpipe train --cg {input.cg:q} --mapping {input.mapping:q} --model {wildcards.model}"
        " --fold {wildcards.fold} --output-dir {params.output_dir:q}"
        " --config {params.config:q} --threads {threads} 2> {log:q}"
