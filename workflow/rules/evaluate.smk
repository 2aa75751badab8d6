rule evaluate:
    input:
        unpack(get_evaluate_inputs),
    output:
        metrics=paths.METRICS,
        fes=report(
            paths.FES,
            caption="../report/fes.rst",
            category="Free-energy surfaces",
        ),
    log:
        paths.log("evaluate", paths.EVALUATE_DIR),
    benchmark:
        paths.benchmark("evaluate", paths.EVALUATE_DIR)
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        config=config_json("evaluate"),
        folds=get_evaluate_fold_args,
        cg=lambda wildcards, input: options("cg", input.cg),
        output_dir=subpath(output.metrics, parent=True),
    shell:
        "cgpipe evaluate {params.cg} --system {wildcards.system}"
        " --mapping {wildcards.mapping} --model {wildcards.model} {params.folds}"
        " --output-dir {params.output_dir:q} --config {params.config:q} 2> {log:q}"
