# I.i.d. draws of the models whose schema section says `x-samples: [..., iid]` (the
# diffusion model, by reverse diffusion); evaluate scores them beside the simulation.
rule sample:
    input:
        model=paths.MODEL,
        cg=get_cg,
        mapping=get_mapping,
    output:
        traj=paths.SAMPLES,
    log:
        paths.log("sample", paths.SAMPLE_DIR),
    benchmark:
        paths.benchmark("sample", paths.SAMPLE_DIR)
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=1,
    params:
        config=config_json("sample"),
        output_dir=subpath(output.traj, parent=True),
    shell:
        "cgpipe sample --model-file {input.model:q} --cg {input.cg:q}"
        " --mapping {input.mapping:q} --fold {wildcards.fold}"
        " --output-dir {params.output_dir:q} --config {params.config:q}"
        " --threads {threads} 2> {log:q}"
