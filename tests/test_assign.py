"""Course assignments (gwnlib.analysis.assign): Otter Assign builds the student, autograder and
solution
files; the solutions score full marks, untouched student notebooks zero, wrong answers fail the
hidden tests they should, and nothing hidden reaches a student."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from gwnlib.analysis import assign

pytest.importorskip("otter", reason="otter-grader is in the teach extra")


def master(name: str) -> dict:
    return json.loads((assign.SOURCES / f"{name}.ipynb").read_text())


@pytest.mark.parametrize("name", assign.ASSIGNMENTS)
def test_masters_are_clean_and_have_four_to_eight_questions(name):
    nb = master(name)
    for cell in nb["cells"]:
        assert cell.get("outputs", []) == [] and cell.get("execution_count") is None
    questions = assign.points(assign.SOURCES / f"{name}.ipynb")
    assert 4 <= len(questions) <= 8 and all(p > 0 for p in questions.values())
    chapter, _ = assign.ASSIGNMENTS[name]
    assert (assign.SOURCES.parent / "book" / f"{chapter}.ipynb").is_file()


def test_unknown_assignments_are_refused(capsys):
    from gwnlib.__main__ import main

    with pytest.raises(ValueError, match="assignment must be one of theory, anatomy"):
        assign.check_names(["thoery"])
    assert main(["assign", "--only", "thoery", "--out", "/nonexistent"]) == 2
    assert "assignment must be one of" in capsys.readouterr().err


def hidden_and_solution_lines(name: str) -> list[str]:
    """The distinctive lines of a master's hidden tests and solutions (what must not leak)."""
    lines, solution = [], False
    for cell in master(name)["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "raw":
            solution = {"# BEGIN SOLUTION": True, "# END SOLUTION": False}.get(text, solution)
            continue
        if cell["cell_type"] != "code":
            continue
        if text.startswith("# HIDDEN"):
            lines += text.splitlines()[1:]
        elif solution:
            inside = False
            for line in text.splitlines():
                if re.match(r"\s*# (BEGIN|END) SOLUTION", line):
                    inside = "BEGIN" in line
                elif inside:
                    lines.append(line)
    return [line.strip() for line in lines if len(line.strip()) > 20]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignments")
    return {item.name: item for item in assign.build(out, progress=False)}


@pytest.mark.slow
def test_every_assignment_builds_student_autograder_and_solutions(built):
    assert set(built) == set(assign.ASSIGNMENTS)
    for item in built.values():
        assert item.student.is_file() and item.solutions.is_file()
        assert item.autograder.suffix == ".zip" and item.autograder.is_file()


@pytest.mark.slow
def test_solutions_score_full_marks_and_untouched_students_zero(built):
    for name, item in built.items():
        assert assign.grade(item.autograder, item.solutions) == item.points, name
        assert assign.grade(item.autograder, item.student) == dict.fromkeys(item.points, 0.0), name


@pytest.mark.slow
def test_an_untouched_student_notebook_runs_to_the_end(built, tmp_path):
    import papermill

    for name, item in built.items():
        folder = tmp_path / name
        shutil.copytree(item.student.parent, folder)
        papermill.execute_notebook(  # raises on the first unhandled error
            str(folder / item.student.name), str(folder / "out.ipynb"), cwd=str(folder)
        )


@pytest.mark.slow
def test_no_hidden_test_or_solution_reaches_a_student(built):
    for name, item in built.items():
        secret = hidden_and_solution_lines(name)
        assert len(secret) >= 8, name  # the check has something to look for
        for path in item.student.parent.rglob("*"):
            if path.is_file():
                text = path.read_text(errors="replace")
                leaked = [line for line in secret if line in text]
                assert not leaked, (path, leaked[:3])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, question, right, wrong",
    [
        # the rate in nats: within the public test's range, but not R(D)
        ("theory", "q4_blahut_arimoto", "np.log2((q / r)", "np.log((q / r)"),
        # the merge picks a: the right values, but the gradient reaches one encoder only
        ("anatomy", "q2_merge", "0.5 * (a + b)", "a + 0 * b.detach()"),
        # the receive rate counted like the transmit rate
        ("training", "q1_rates", "2 * rated.r0 + rated.r1", "rated.r0 + rated.r1"),
    ],
)
def test_a_wrong_answer_fails_the_hidden_test_it_should(
    built, tmp_path, name, question, right, wrong
):
    item = built[name]
    nb = json.loads(item.solutions.read_text())
    sources = ["".join(cell["source"]) for cell in nb["cells"]]
    assert sum(right in text for text in sources) == 1, right
    for cell in nb["cells"]:
        cell["source"] = "".join(cell["source"]).replace(right, wrong)
    wrong_path = tmp_path / item.solutions.name
    wrong_path.write_text(json.dumps(nb))  # the autograder zip brings the data files it reads
    scores = assign.grade(item.autograder, wrong_path)
    # Otter gives partial credit per test case: the public test passes, a hidden one fails.
    assert 0.0 < scores[question] < item.points[question]
    assert {q: s for q, s in scores.items() if q != question} == {
        q: p for q, p in item.points.items() if q != question
    }


def test_the_instructor_page_lists_every_assignment():
    page = (assign.SOURCES.parent / "book" / "instructors.md").read_text()
    for name in assign.ASSIGNMENTS:
        total = sum(assign.points(assign.SOURCES / f"{name}.ipynb").values())
        assert f"`{name}`" in page and f"{total:g} points" in page
