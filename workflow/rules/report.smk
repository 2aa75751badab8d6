rule report:
    input:
        metrics=get_all_metrics(),
        fes=get_all_fes(),
        scores=get_all_mapping_scores(),
        fits=get_all_fit_tables(),
        backmap_scores=get_all_backmap_scores(),
    output:
        report(
            paths.REPORT,
            caption="../report/index.rst",
            category="Report",
        ),
    log:
        paths.log("report", paths.REPORT),
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    params:
        args=get_report_args(),
    shell:
        "cgpipe report --output {output:q} {params.args} 2> {log:q}"
