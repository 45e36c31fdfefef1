"""`langsamp experiment`: the whole LangSAMP ablation study from one YAML file.

One experiment = pretrain the chosen variants (vanilla, lang, script, both: the paper's Table 2) from the
same initialisation, corpus, seed and step budget; evaluate every checkpoint on the chosen tasks; compare
each LangSAMP variant's language neutrality with the vanilla model; plot the learned embedding tables; and
write one folder with the tables and pictures together (``index.md`` + ``index.html``).

The work is a list of stages run top to bottom::

    tokenizer                 one Unigram tokenizer shared by every variant (from-scratch runs only)
    pretrain:<variant>        `langsamp pretrain` (always --resume: an interrupted run continues)
    eval:<task>:<variant>     `langsamp eval <task>` (it skips finished language units itself)
    similarity:<variant>      `langsamp similarity --compare <vanilla>`
    plots:<variant>           `langsamp plot-embeddings` (variants that have tables)
    report                    report library -> report/ tables + index.md / index.html

With ``runner: inprocess`` every stage runs inside this process through the library (never the CLI):
pretraining (``pretrain.trainer.pretrain``), evaluation (``tasks.retrieval_run.run_retrieval_task``,
``tasks.transfer_run.run_transfer``), similarity (``analysis.similarity_run.similarity_report``) and plots
(``analysis.pca_run.plot_embeddings``). With ``runner: subprocess`` each command stage runs as
``sys.executable -m langsamp_cli <its command line>`` (process isolation). A pretraining ``launcher``
prefix such as ``accelerate launch --num_processes 4`` always runs as a subprocess. The dry run lists
each stage's equivalent `langsamp` command line. Each stage writes its output (stdout, stderr, the
``langsamp`` logger) to ``logs/<stage>.log``. ``experiment_state.json`` records every stage's status
and *signature* (its command and inputs): a rerun skips stages whose signature is unchanged, and never
redoes a pretraining run whose ``final/`` exists. A failure is recorded and stops the run with one line
naming the stage and its log.

Same initialisation: the pretrain command seeds ``torch.manual_seed(seed)`` right before it builds the
model, and the backbone is built before the (optional) language/script tables, so with the shared
tokenizer every variant starts from identical backbone weights (tests/test_experiment.py checks this).

Modules: ``config`` (YAML -> ExperimentConfig, validation), ``stages`` (the plan, folder layout, state
file), ``runner`` (running and skipping stages, logs, export) and ``site`` (index.md / index.html).
"""

from langsamp_cli.experiment.config import (
    BASELINE,
    EVAL_TASKS,
    input_path_keys,
    RESERVED,
    RUNNERS,
    ExperimentConfig,
    experiments_dir,
    flags_to_argv,
    load_experiment_config,
    missing_paths,
    pretrain_settings,
    resolve_config_path,
    validate,
)
from langsamp_cli.experiment.runner import (
    EXPORT_SUFFIXES,
    ExperimentResult,
    execute,
    export_report,
    link_model,
    run_experiment,
    run_stage,
    stage_command,
    stage_table,
)
from langsamp_cli.experiment.site import IndexPage, Section, _launcher_processes, write_experiment_report
from langsamp_cli.experiment.stages import (
    STATE_FILE,
    ExperimentState,
    Layout,
    Stage,
    plan_stages,
    stage_status,
)

__all__ = [
    "BASELINE", "EVAL_TASKS", "EXPORT_SUFFIXES", "input_path_keys", "RESERVED", "RUNNERS", "STATE_FILE",
    "ExperimentConfig", "ExperimentResult", "ExperimentState", "IndexPage", "Layout",
    "Section", "Stage", "_launcher_processes", "execute", "experiments_dir", "export_report", "flags_to_argv",
    "link_model", "load_experiment_config", "missing_paths", "plan_stages", "pretrain_settings",
    "resolve_config_path", "run_experiment", "run_stage", "stage_command", "stage_status", "stage_table",
    "validate", "write_experiment_report",
]
