rule mapping:
    input:
        references=expand(paths.REFERENCE, i=0, allow_missing=True),
        map_file=get_user_map_file,
    output:
        paths.MAPPING,
    log:
        paths.log("mapping", paths.MAPPING),
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        config=config_json("mapping"),
    shell:
        "cgpipe mapping {input.references:q} --mapping {wildcards.mapping}"
        " --output {output:q} --config {params.config:q} 2> {log:q}"


# A map fitted to data (k-means, Autograin): one per fold, from that fold's training
# trajectories, with its fit table (elbow curve, losses).
rule mapping_fold:
    input:
        get_reference_trajectories,
    output:
        mapping=paths.MAPPING_FOLD,
        fit=paths.MAPPING_FIT,
    log:
        paths.log("mapping", paths.MAPPING_FOLD),
    benchmark:
        paths.benchmark("mapping", paths.MAPPING_FOLD)
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        config=config_json("mapping"),
    shell:
        "cgpipe mapping {input:q} --mapping {wildcards.mapping} --fold {wildcards.fold}"
        " --output {output.mapping:q} --config {params.config:q} 2> {log:q}"


# Every mapping of a system on each fold's held-out frames, beside random maps.
rule compare_mappings:
    input:
        references=get_reference_trajectories,
        maps=get_fold_maps,
    output:
        paths.MAPPING_SCORES,
    log:
        paths.log("compare", paths.MAPPING_SCORES),
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        config=config_json("compare"),
        maps=lambda wildcards, input: options("map", input.maps),
    shell:
        "cgpipe compare {input.references:q} {params.maps} --system {wildcards.system}"
        " --mapping {wildcards.mapping} --output {output:q} --config {params.config:q}"
        " 2> {log:q}"
