"""The GitHub Actions workflows (.github/workflows/): valid under GitHub's workflow schema,
checked offline, and running nothing the repository lacks.

The schema is schemastore's ``github-workflows``, vendored by the check-jsonschema package; the
test blocks the network while it validates. The second check reads every ``run:`` step, expands
its variables (a ``choice`` input once per option) and ``for`` loops, and looks at each command:
``make.py`` and its commands, ``python -m gwnlib`` commands and flags (on gwnlib's own parser,
with the presets and devices gwnlib accepts), pytest's markers and paths, ``.ci/gpu`` and its
subcommands, and any other repository script. A program the checker does not know is a
problem too, so that no command goes unchecked. Every ``uses:`` names a version tag.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
import shlex
import socket
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

from gwnlib.__main__ import build_parser
from gwnlib.runtime import PRESETS
from gwnlib.runtime import PROJECT_ROOT as ROOT

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

sys.path.insert(0, str(ROOT))
import make  # noqa: E402  (the stdlib-only bootstrap at the top of the checkout)

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
#: System tools a step may call; anything else must be a command this checker knows.
TOOLS = {"tar", "zip", "echo", "ls", "cp", "mkdir", "df", "du", "nvidia-smi", "cat", "test", "["}
#: The environment that ``make.py`` creates (``.venv``, unless GWN_VENV says otherwise).
VENV_PYTHON = str(make.venv_python(Path(".venv")))
SHELL_WORDS = {"if", "then", "else", "elif", "do", "!"}
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
VERSION_TAG = re.compile(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@v\d+(\.\d+){0,2}")


def test_there_are_workflows_for_the_book_and_the_gpu():
    assert {path.stem for path in WORKFLOWS} >= {"book", "gpu"}


# -- 1. the schema --------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch):
    """No connection can be opened while this fixture is active: the check is offline."""

    def refuse(*args, **kwargs):
        raise OSError("network access during an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def validate(*paths: Path):
    """check-jsonschema's command line, in this process: (exit code, output)."""
    check_jsonschema = pytest.importorskip("check_jsonschema")
    from click.testing import CliRunner

    args = ["--builtin-schema", "vendor.github-workflows", *map(str, paths)]
    result = CliRunner().invoke(check_jsonschema.main, args)
    return result.exit_code, result.output


def test_every_workflow_is_valid_under_the_github_workflow_schema_offline(offline):
    with pytest.raises(OSError, match="network access during an offline test"):
        socket.create_connection(("pypi.org", 443))  # the guard is on
    code, output = validate(*WORKFLOWS)
    assert code == 0, output
    assert "validation done" in output


def test_the_schema_check_fails_a_broken_workflow(offline, tmp_path):
    """The validator is real: a job without ``runs-on`` and a step with both ``uses`` and
    ``run`` fail, and so does an unknown trigger."""
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  build:\n    steps:\n      - run: echo hi\n")
    code, output = validate(broken)
    assert code == 1 and "runs-on" in output
    broken.write_text("on: pushed\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: []\n")
    assert validate(broken)[0] == 1


# -- 2. what the steps run ------------------------------------------------------------------------


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def candidates(value, inputs: dict) -> list[str]:
    """The values an ``env:`` entry takes: each option of a ``choice`` input it names, the
    default of another input, and a placeholder for other expressions."""
    value = str(value)
    match = re.fullmatch(r"\$\{\{\s*inputs\.(\w+)\s*\}\}", value)
    if match:
        spec = inputs.get(match[1])
        if spec is None:
            return [f"<no input {match[1]}>"]
        if spec.get("type") == "choice":
            return [str(option) for option in spec["options"]]
        if spec.get("type") == "boolean":
            return ["true", "false"]
        return [str(spec.get("default", ""))]
    return [re.sub(r"\$\{\{.*?\}\}", "EXPR", value)]


def substitute(text: str, values: dict[str, str]) -> str:
    def value(match):
        name = match[1] or match[2]
        return values.get(name, match[0])

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def simple_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script (token lists), ``for X in WORDS; do ...; done``
    loops unrolled; ``if``/``then``/``do`` and the like stripped; redirections dropped."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command = []
        for token in [*lexer, ";"]:
            if token in (";", "&&", "||", "|", "&"):
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(token)
    unrolled, stack = [], []
    for command in commands:
        while command and command[0] in SHELL_WORDS:
            command = command[1:]
        command = drop_redirections(command)
        if not command or command[0] == "fi":
            continue
        if command[0] == "for" and len(command) >= 3 and command[2] == "in":
            stack.append((command[1], command[3:], []))
        elif command[0] == "done" and stack:
            name, words, body = stack.pop()
            runs = [
                [substitute(token, {name: word}) for token in inner]
                for word in words
                for inner in body
            ]
            (stack[-1][2] if stack else unrolled).extend(runs)
        else:
            (stack[-1][2] if stack else unrolled).append(command)
    return unrolled


def drop_redirections(command: list[str]) -> list[str]:
    """``command`` without its redirections (shlex gives ``2>&1`` as ``2``, ``>&``, ``1``)."""
    kept, skip = [], False
    for token in command:
        if skip:
            skip = False
        elif re.fullmatch(r"[<>&]+", token) and token != "&":
            skip = True  # the operator and its target
            if kept and kept[-1].isdigit():
                kept.pop()  # the file descriptor before it
        else:
            kept.append(token)
    return kept


def gwnlib_problems(args: list[str]) -> list[str]:
    """``python -m gwnlib ARGS`` parsed by gwnlib's own parser; then the preset and device,
    which gwnlib checks only when the command runs."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            parsed = build_parser().parse_args(args)
    except SystemExit:
        said = stderr.getvalue().strip().splitlines()
        return [f"python -m gwnlib {' '.join(args)}: {said[-1] if said else 'refused'}"]
    problems = []
    if getattr(parsed, "preset", None) not in (None, *PRESETS):
        problems.append(f"python -m gwnlib {' '.join(args)}: preset {parsed.preset!r} unknown")
    if getattr(parsed, "device", None) is not None and not DEVICE.fullmatch(parsed.device):
        problems.append(f"python -m gwnlib {' '.join(args)}: device {parsed.device!r} unknown")
    return problems


def pytest_problems(args: list[str]) -> list[str]:
    """Markers of ``-m`` must be declared in pyproject.toml; paths must exist."""
    declared = {
        line.split(":")[0].strip()
        for line in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
            "ini_options"
        ]["markers"]
    }
    problems, words = [], iter(args)
    for word in words:
        if word == "-m":
            expression = next(words, "")
            for marker in re.findall(r"\w+", expression):
                if marker not in ("and", "or", "not") and marker not in declared:
                    problems.append(f"pytest -m {expression!r}: marker {marker!r} undeclared")
        elif word in ("-k", "-p", "--durations", "-n"):
            next(words, None)
        elif not word.startswith("-") and not (ROOT / word.split("::")[0]).exists():
            problems.append(f"pytest: no such path {word}")
    return problems


def ci_gpu_problems(args: list[str]) -> list[str]:
    """``.ci/gpu SUBCOMMAND``: one its ``case`` handles (and for ``sweep``, its action)."""
    text = (ROOT / ".ci" / "gpu").read_text()
    handled = set(re.findall(r"^(\w+)\)$", text, re.M))
    actions = set(re.findall(r"^    (\w+)\)$", text, re.M))
    if not args or args[0] not in handled:
        return [f".ci/gpu {' '.join(args)}: handles only {', '.join(sorted(handled))}"]
    if args[0] == "sweep" and (len(args) < 2 or args[1] not in actions):
        return [f".ci/gpu {' '.join(args)}: sweep takes {', '.join(sorted(actions))}"]
    return []


def command_problems(command: list[str]) -> list[str]:
    while command and re.fullmatch(r"\w+=.*", command[0]):  # FOO=bar program ...
        command = command[1:]
    if not command:
        return []
    program, args = command[0], command[1:]
    if program in ("python", "python3", VENV_PYTHON):
        return python_problems(args)
    if program in ("bash", "sh"):
        return script_problems(args[0], args[1:]) if args else [f"{program} without a script"]
    if "/" in program and not program.startswith(("/", "$")):
        return script_problems(program, args)
    if program in TOOLS:
        return []
    return [f"unknown program {program!r} (a system tool? add it to TOOLS)"]


def python_problems(args: list[str]) -> list[str]:
    if args[:1] == ["-m"] and len(args) >= 2:
        module, rest = args[1], args[2:]
        if module == "gwnlib":
            return gwnlib_problems(rest)
        if module == "pytest":
            return pytest_problems(rest)
        return [] if find_spec(module) else [f"python -m {module}: no such module"]
    if args[:1] == ["-c"]:
        return []
    return script_problems(args[0], args[1:]) if args else ["python without a script"]


def script_problems(script: str, args: list[str]) -> list[str]:
    if not (ROOT / script).is_file():
        return [f"no such script in the repository: {script}"]
    if Path(script) == Path("make.py"):
        if not args or args[0] not in make.COMMANDS:
            return [f"make.py {' '.join(args)}: commands are {', '.join(make.COMMANDS)}"]
        if args[0] in ("book", "assign"):
            return gwnlib_problems(args)
        if args[0] == "test":
            return pytest_problems(args[1:])
        return [f"make.py {args[0]} takes no arguments"] if args[1:] else []
    if Path(script) == Path(".ci/gpu"):
        return ci_gpu_problems(args)
    return []


def step_problems(workflow: dict) -> list[str]:
    """Every problem of every ``run:`` and ``uses:`` step of ``workflow`` (a parsed file)."""
    triggers = workflow.get("on", workflow.get(True)) or {}
    dispatch = triggers.get("workflow_dispatch") if isinstance(triggers, dict) else None
    inputs = (dispatch or {}).get("inputs") or {}
    problems = []
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            where = f"{job_name}/{step.get('name', step.get('uses', step.get('run', '?')))}"
            uses = step.get("uses")
            if uses is not None:
                local = uses.startswith("./") and (ROOT / uses).is_dir()
                if not local and not VERSION_TAG.fullmatch(uses):
                    problems.append(f"{where}: {uses} is not pinned to a version tag (@vN)")
            if "run" not in step:
                continue
            if "${{" in step["run"]:
                problems.append(f"{where}: an expression in run: (pass it through env:)")
            env = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
            names = sorted(env)
            choices = [candidates(env[name], inputs) for name in names]
            for values in itertools.product(*choices):
                script = substitute(step["run"], dict(zip(names, values, strict=True)))
                for command in simple_commands(script):
                    problems += [f"{where}: {p}" for p in command_problems(command)]
    return sorted(set(problems))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_step_runs_only_what_the_repository_has(path):
    assert step_problems(load(path)) == []
    for hashed in re.findall(r"hashFiles\('([^']+)'\)", path.read_text()):
        assert (ROOT / hashed).is_file(), f"hashFiles of a missing file: {hashed}"


def test_the_pages_artifact_is_the_folder_the_book_is_built_in():
    import inspect

    from gwnlib.analysis import book

    html = Path(inspect.signature(book.build).parameters["out"].default) / "html"
    (step,) = [
        step
        for job in load(ROOT / ".github" / "workflows" / "book.yml")["jobs"].values()
        for step in job.get("steps", [])
        if step.get("uses", "").startswith("actions/upload-pages-artifact@")
    ]
    assert ROOT / step["with"]["path"] == html


def test_the_steps_run_the_readme_commands_and_the_gpu_steps():
    """Not vacuous: the commands the workflows exist for are among those checked."""
    run = {
        " ".join(command)
        for path in WORKFLOWS
        for job in load(path)["jobs"].values()
        for step in job.get("steps", [])
        if "run" in step
        for command in simple_commands(step["run"])
    }
    assert {"python3 make.py env", "python3 make.py test -m not slow"} <= run
    assert {"bash .ci/gpu check", "bash .ci/gpu bench"} <= run
    assert any(command.startswith("python3 make.py book --preset smoke") for command in run)


def workflow(run: str, **env) -> dict:
    """A one-step workflow, with a dispatch input ``preset`` whose options include a typo."""
    return {
        "on": {"workflow_dispatch": {"inputs": {
            "preset": {"type": "choice", "options": ["short", "papr"]}}}},
        "env": {"PRESET": "${{ inputs.preset }}"},
        "jobs": {"job": {"runs-on": "x", "steps": [{"name": "step", "run": run, "env": env}]}},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("run", "problem"),
    [
        ("python3 make.py bok", "make.py bok: commands are book, test"),
        ("python3 mkae.py book", "no such script in the repository: mkae.py"),
        ("bash .ci/gpu chek", ".ci/gpu chek: handles only bench, check, lease, sweep, wheels"),
        ("bash .ci/gpu sweep begin", ".ci/gpu sweep begin: sweep takes collect, start"),
        ("bash .ci/gpux check", "no such script in the repository: .ci/gpux"),
        ("python -m gwnlib sweep synthtic", "argument name: invalid choice: 'synthtic'"),
        ("python -m gwnlib book --presets smoke", "unrecognized arguments: --presets smoke"),
        ("python3 make.py book --preset smok", "preset 'smok' unknown"),
        ("python3 make.py book --device gpu", "device 'gpu' unknown"),
        ('python3 make.py test -m "not slw"', "marker 'slw' undeclared"),
        ("python3 make.py test tests/test_nothing.py", "no such path tests/test_nothing.py"),
        ("python -m notamodule", "python -m notamodule: no such module"),
        ("make book", "unknown program 'make'"),
        ('python3 make.py book --preset "$PRESET"', "preset 'papr' unknown"),
        ("for s in synthetic bogus; do\n  python -m gwnlib sweep $s --list\ndone",
         "invalid choice: 'bogus'"),
        ("echo ${{ inputs.preset }}", "an expression in run: (pass it through env:)"),
    ],
)  # fmt: skip
def test_the_checker_finds_what_is_missing(run, problem):
    problems = step_problems(workflow(run))
    assert any(problem in p for p in problems), problems


def test_the_checker_passes_good_steps_and_finds_unpinned_actions():
    good = "for s in synthetic coco; do\n  python -m gwnlib sweep $s --preset short --list\ndone"
    assert step_problems(workflow(good)) == []
    assert step_problems(workflow("bash .ci/gpu sweep start paper > log 2>&1")) == []
    assert simple_commands("a x > /dev/null 2>&1 && b 2> err; c &> out") == [
        ["a", "x"], ["b"], ["c"]
    ]  # fmt: skip
    unpinned = workflow("echo hi")
    unpinned["jobs"]["job"]["steps"].append({"uses": "actions/checkout@main"})
    assert step_problems(unpinned) == [
        "job/actions/checkout@main: actions/checkout@main is not pinned to a version tag (@vN)"
    ]
