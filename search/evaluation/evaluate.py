"""A final evaluation from request to typed result: the study's selection and its variants
trained over the rounds, and the selection's round-0 nets kept for the model file."""

from __future__ import annotations

import itertools
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import torch

from data import load_source
from models import parameter_count, resolve_device, resolve_precision
from search.errors import UsageError
from search.evaluation.ablation import SELECTION, first_nets, variants
from search.evaluation.publish import check_publishable, recover
from search.evaluation.result import (
    EvalResult,
    ModelFile,
    ensemble_gain,
    gain_over_default,
    one_net_gain,
    summarize_variants,
)
from search.evaluation.rounds import TEST_PAIRS, KeptModel, evaluate_rounds, jobs_for, round_seed
from search.paths import MODEL_FILE
from search.storage import find_storage, open_storage, study_folder
from search.study import (
    StudySettings,
    Tradeoff,
    check_direction,
    default_in_budget,
    pick_trial,
    replay,
)


@dataclass(frozen=True)
class EvalRequest:
    """What `python -m search.final_eval` was asked to do."""

    study: str
    storage: str | None  # --storage as given; None: the study's file under studies/
    trial: int | None  # None: the race's selection (the search's best where there is no race)
    rounds: int
    seed: int
    workers: int
    device: str
    data_dir: Path | None  # None: the study's
    ensemble: int | None  # None: DEFAULT_ENSEMBLE, or one net under a parameter budget
    ablation: bool
    command: str  # as the user typed it, passwords masked
    pack: bool = True  # a variant's nets over several rounds trained as one packed network
    precision: str | None = None  # models.precision; None: the study's


DEFAULT_ENSEMBLE = 3


def nets_within(request: EvalRequest, settings: StudySettings, trial: int, params: int) -> int:
    """The selection's ensemble size: as asked, else DEFAULT_ENSEMBLE, or one net where the
    study has a budget (the model a user keeps stays within it); refused where the selection,
    or the ensemble asked for, is over the budget."""
    budget = settings.max_params
    if budget is None:
        return request.ensemble or DEFAULT_ENSEMBLE
    if params > budget:
        raise UsageError(
            f"trial {trial} has {params:,} parameters, over the budget of {budget:,} of study "
            f"{request.study!r} (--max-params); choose a trial within it"
        )
    nets = request.ensemble or 1
    if nets * params > budget:
        raise UsageError(
            f"--ensemble {nets} makes a model of {nets} x {params:,} parameters, over the budget "
            f"of {budget:,} of study {request.study!r}; at most {budget // params} net(s) fit"
        )
    return nets


@dataclass(frozen=True)
class Evaluation:
    study: optuna.Study
    result: EvalResult
    kept: KeptModel  # the selection's nets of round 0
    folder: Path  # where it is published (search.storage's study_folder)


def load_study(name: str, storage_flag: str | None) -> tuple[optuna.Study, Path]:
    """The study, and the folder its results go to."""
    spec = find_storage(name, storage_flag)
    storage = open_storage(spec, create=False)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise UsageError(
            f"no study {name!r} in {spec.shown} (it has: {', '.join(names) or 'none'})"
        ) from None
    check_direction(study)
    return study, study_folder(name, spec)


def evaluate(request: EvalRequest, *, say: Callable[[str], None] = print) -> Evaluation:
    """Train the variants over the rounds and return the typed result; `say` hears what is
    about to be trained. Every check a user's input can fail comes before any training."""
    device = resolve_device(request.device)
    study, folder = load_study(request.study, request.storage)
    settings = StudySettings.from_user_attrs(study.user_attrs, study=request.study)
    precision = resolve_precision(request.precision or settings.precision, device)
    trial, why = pick_trial(study, request.trial)
    trials = study.get_trials(deepcopy=False)
    tradeoff = Tradeoff.of(trials, settings.max_params)
    if request.data_dir is not None:
        settings = replace(settings, data_dir=str(request.data_dir))
    config = replay(trial, epochs=settings.epochs)
    params = parameter_count(config)
    ensemble = nets_within(request, settings, trial.number, params)
    found = default_in_budget(settings.max_params, epochs=settings.epochs)
    configs = variants(
        config,
        ablation=request.ablation,
        ensemble=ensemble,
        default=found.config if found else None,
        size=params if settings.max_params is not None else None,
    )
    seeds = [round_seed(request.seed, r) for r in range(request.rounds)]
    first = first_nets(configs)
    per_variant = [
        jobs_for(name, c, seeds, train_pairs=settings.train_pairs, device=request.device,
                 first_net=first.get(name),
                 keep=0 if name == SELECTION else None,  # round 0: no round is picked for its luck
                 pack=request.pack, precision=precision)
        for name, c in configs.items()
        if name not in first.values()
    ]  # fmt: skip
    # Round-robin over the variants, so that the processes share the rounds' order.
    jobs = [j for group in itertools.zip_longest(*per_variant) for j in group if j is not None]
    check_publishable(folder)
    for line in recover(study, folder):
        say(line)
    # Check the data once here: a bad --data-dir ends in one line before any work starts.
    source = load_source(settings.dataset, Path(settings.data_dir) if settings.data_dir else None)
    if len(source.test_images) < 2 * TEST_PAIRS:
        raise UsageError(
            f"a round draws {TEST_PAIRS} test pairs ({2 * TEST_PAIRS} images), and the "
            f"{settings.dataset} test pool has {len(source.test_images)}: point --data-dir at "
            "a folder with the complete MNIST test files (t10k, 10,000 images)"
        )
    say(f"study {request.study!r}: {why}")
    if settings.max_params is not None and found is not None:
        say(f"parameter budget {settings.max_params:,}: the default is {found.why}")
    nets = f" as {ensemble} nets" if ensemble > 1 else ""
    say(
        f"trial #{trial.number}{nets} (search validation {100 * (trial.value or 0):.2f} %): "
        f"{len(configs)} variant(s) x {request.rounds} rounds, {request.workers} worker(s)"
    )
    start = time.time()
    done = evaluate_rounds(
        jobs, dataset=settings.dataset, data_dir=settings.data_dir, workers=request.workers
    )
    rows, kept = done.rows, done.kept
    assert kept is not None, "round 0 of the selection keeps its nets"
    chosen = configs[SELECTION]
    result = EvalResult(
        study=request.study,
        trial=trial.number,
        selection=why,
        validation_accuracy=trial.value,
        variants=configs,
        seed=request.seed,
        round_seeds=seeds,
        dataset=settings.dataset,
        train_pairs=settings.train_pairs,
        test_pairs=TEST_PAIRS,
        summary=summarize_variants(rows, configs),
        gain=gain_over_default(rows),
        one_net_gain=one_net_gain(rows),
        ensemble_gain=ensemble_gain(rows),
        rounds=rows,
        wall_seconds=time.time() - start,
        command=request.command,
        versions={
            "python": platform.python_version(),
            "torch": torch.__version__,
            "optuna": optuna.__version__,
            # the CPU's vector instructions: AVX-512 and AVX2 kernels train slightly different
            # nets from one seed, so a rerun repeats these rounds on a CPU of the same kind
            "cpu": torch.backends.cpu.get_cpu_capability(),
        },
        model=ModelFile(
            path=str(folder / MODEL_FILE),
            round=kept.round,
            seed=kept.seed,
            test_accuracy=kept.test_accuracy,
            nets=chosen.ensemble,
            parameters=params,
        ),
        max_params=settings.max_params,
        precision=precision,
        default_is=found.name if found else "none: nothing of the default's kind fits the budget",
        points=tradeoff.points,
        over_budget=tradeoff.over_budget,
    )
    return Evaluation(study, result, kept, folder)
