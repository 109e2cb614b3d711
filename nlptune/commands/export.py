"""`nlptune export`: a finished run's best model (or a saved model folder on its own) as ONNX (checked against
PyTorch) or in the HF layout."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    parser = sub.add_parser("export", help="export a run's best model (onnx, hf)",
                            description="ONNX: writes model.onnx + tokenizer into RUN_DIR/onnx (or --output) and "
                            "checks it with onnxruntime against PyTorch on validation rows (max abs diff printed). "
                            "hf: the best/ folder is already the Hugging Face layout; --output copies it. A saved "
                            "model folder on its own (a copy of best/, an hf export) takes the place of RUN_DIR; "
                            "its ONNX export needs --file and --output.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished run, or a saved model folder")
    parser.add_argument("--format", default="onnx", choices=["onnx", "hf"])
    parser.add_argument("--output", help="folder to write (default: RUN_DIR/onnx for onnx; best/ itself for hf)")
    parser.add_argument("--file", help="jsonl/csv/tsv/parquet rows to check the ONNX model on "
                        "(default: the run's validation split)")
    parser.add_argument("--atol", type=float, default=1e-4, help="largest accepted |onnx - pytorch| (default 1e-4)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from nlptune.inference.run_reading import as_given, check_best, check_run, is_saved_model
    from nlptune.utils.files import refuse_links_in

    if args.format == "onnx":
        from nlptune.inference.export import check_tolerance

        check_tolerance(args.atol)  # before the run is read: nothing is loaded for a check that cannot pass
    path = as_given(args.run_dir)  # a run's best/ is exported as its run
    if is_saved_model(path):
        check_best(path)  # (its ONNX export's --file and --output: checked by export_onnx before the model loads)
    else:
        check_run(path, finished=True)
    if args.output or args.format == "onnx":  # the folder written into: never through a link
        refuse_links_in(args.output or path / "onnx", "(the export folder)")
    if args.format == "hf":
        from nlptune.inference.export import export_hf
        from nlptune.train.rundir import read_task_info

        folder = export_hf(path, args.output)
        pretrained = read_task_info(folder)["joint_pairs"]
        how = _how_to_load_hf(folder, pretrained)
        print(f"Hugging Face layout: {folder}\nload with {how}; or `nlptune predict {folder} ...` (the "
              "folder alone, or the run directory)")  # the command's result: printed even with --quiet
        return 0
    from nlptune.inference.export import export_onnx

    result = export_onnx(path, args.output, file=args.file, atol=args.atol)
    print(f"ONNX model: {result.path} (exporter: {result.exporter}; inputs: {', '.join(result.inputs)})")
    print(f"checked against PyTorch on {result.rows_checked} rows in 2 batches: "
          f"max abs diff {result.max_abs_diff:.3g} (tolerance {args.atol:g})")
    return 0


def _how_to_load_hf(folder, pretrained: bool) -> str:
    """How the exported folder loads outside nlptune."""
    if not pretrained:
        return ("nlptune.models.load_scratch_model(PATH) (safetensors weights + nlptune_model.json; the tokenizer "
                "loads with transformers.AutoTokenizer)")
    from nlptune.models.pretrained import saved_pooling

    if saved_pooling(folder) == "cls":
        return ("transformers.AutoModelForSequenceClassification.from_pretrained(PATH) or "
                "pipeline('text-classification', model=PATH)")
    # transformers alone would load the weights and read the first token: predictions that are silently wrong
    return ("nlptune.models.pretrained.restore_pooling(transformers.AutoModelForSequenceClassification"
            ".from_pretrained(PATH)): the head reads the mean of the tokens (model.pooling=mean), which "
            "transformers alone does not know (it would read the first token)")
