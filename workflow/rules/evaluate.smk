rule evaluate:
    input:
        unpack(get_evaluate_inputs),
    output:
        metrics="results/evaluate/{system}/{mapping}/{model}/metrics.parquet",
        fes=report(
            "results/evaluate/{system}/{mapping}/{model}/fes.png",
            caption="../report/fes.rst",
            category="Free-energy surfaces",
        ),
    log:
        "logs/evaluate/{system}/{mapping}/{model}.log",
    benchmark:
        "benchmarks/evaluate/{system}/{mapping}/{model}.tsv"
    conda:
        "../../envs/cgpipe.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        config=config_json("evaluate", "train"),
        folds=get_evaluate_fold_args,
        output_dir=subpath(output.metrics, parent=True),
    shell:
        "cgpipe evaluate --cg {input.cg:q} --system {wildcards.system}"
        " --mapping {wildcards.mapping} --model {wildcards.model} {params.folds}"
        " --output-dir {params.output_dir:q} --config {params.config:q} 2> {log:q}"
