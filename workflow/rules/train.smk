rule train:
    input:
        cg=get_cg,
        mapping=get_mapping,
    output:
        model=paths.MODEL,
        losses=report(
            paths.LOSSES,
            caption="../report/losses.rst",
            category="Training",
        ),
    log:
        paths.log("train", paths.TRAIN_DIR),
    benchmark:
        paths.benchmark("train", paths.TRAIN_DIR)
    conda:
        "../../envs/torch.yaml"
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
