rule forces:
    input:
        mapping=paths.MAPPING,
        references=get_reference_trajectories,
    output:
        paths.CG,
    log:
        paths.log("forces", paths.CG),
    benchmark:
        paths.benchmark("forces", paths.CG)
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        config=config_json("forces"),
    shell:
        "cgpipe forces {input.references:q} --mapping {input.mapping:q}"
        " --output {output:q} --config {params.config:q} 2> {log:q}"


# The CG data of a map fitted per fold: every trajectory projected with that fold's map.
rule forces_fold:
    input:
        mapping=get_mapping,
        references=get_reference_trajectories,
    output:
        paths.CG_FOLD,
    log:
        paths.log("forces", paths.CG_FOLD),
    benchmark:
        paths.benchmark("forces", paths.CG_FOLD)
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        config=config_json("forces"),
    shell:
        "cgpipe forces {input.references:q} --mapping {input.mapping:q}"
        " --fold {wildcards.fold} --output {output:q} --config {params.config:q} 2> {log:q}"
