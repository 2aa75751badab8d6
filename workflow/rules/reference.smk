# Reference data: generated with OpenMM (prepare, then one job per trajectory) or
# downloaded with checksums and converted (download, ingest).


rule prepare_structure:
    input:
        get_structure_file,
    output:
        paths.STRUCTURE,
    log:
        paths.log("reference", paths.STRUCTURE),
    wildcard_constraints:
        system=_one_of(GENERATED),
    conda:
        "../../envs/reference.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        source=get_structure_source,
        config=config_json("reference"),
    shell:
        "cgpipe prepare --system {wildcards.system} {params.source}"
        " --output {output:q} --config {params.config:q} 2> {log:q}"


rule reference:
    input:
        paths.STRUCTURE,
    output:
        paths.REFERENCE,
    log:
        paths.log("reference", paths.REFERENCE),
    benchmark:
        paths.benchmark("reference", paths.REFERENCE)
    wildcard_constraints:
        system=_one_of(GENERATED),
    conda:
        "../../envs/reference.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        gpu=1,
    params:
        config=config_json("reference"),
    shell:
        "cgpipe reference --structure {input:q} --system {wildcards.system}"
        " --index {wildcards.i} --output {output:q} --config {params.config:q}"
        " --threads {threads} 2> {log:q}"


rule download:
    output:
        paths.DOWNLOAD,
    log:
        paths.log("download", paths.DOWNLOAD),
    wildcard_constraints:
        system=_one_of(DOWNLOADED),
    conda:
        "../../envs/reference.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        source=get_source,
        config=config_json("download"),
    shell:
        "cgpipe download --source {params.source} --output {output:q}"
        " --config {params.config:q} 2> {log:q}"


rule ingest:
    input:
        get_downloads,
    output:
        paths.REFERENCE,
    log:
        paths.log("reference", paths.REFERENCE),
    wildcard_constraints:
        system=_one_of(DOWNLOADED),
    conda:
        "../../envs/reference.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        source=get_source,
        config=config_json("download"),
    shell:
        "cgpipe ingest --source {params.source} {input:q} --system {wildcards.system}"
        " --index {wildcards.i} --output {output:q} --config {params.config:q} 2> {log:q}"
