"""Hostile input, grouped by the contract each file holds (once ordered by issue 12's findings).

The contract for every case (tests/hostile/contract.py): exit 2 (trouble), one
line ``relock: error: ...`` on stderr, no traceback, and no output file
written, replaced or half-left. Most cases go through click's CliRunner; a few
run ``python -m relock`` as a real process (signals, tracebacks). No image is
built here.

- test_lock_values.py: a lock's values cannot reach a Dockerfile, apt or pip unchecked
- test_lock_files.py: files given as a lock that are no lock
- test_templates.py: templates relock reads
- test_rootfs_trees.py: image trees freeze reads
- test_outputs.py: what relock writes (atomic, never onto a non-file, no control characters)
- test_http_answers.py: indexes, archives and registries that misbehave
- test_engine_answers.py: container engines that misbehave
- test_settings.py: settings from the environment
- test_error_lines.py: usage errors and real processes fail in one line

A test that holds a finding of issue 12's review names it in its docstring or in
a comment above it (the lock cases carry it in their first column). Findings
held elsewhere: S2 in tests/build/test_verify.py::test_a_changed_apt_source_is_drift
and tests/lock/test_diff.py::test_golden_multiarch_multienv; S4 in
tests/template/test_render.py::test_file_names_cannot_add_lines; S7 in
tests/lock/test_diff.py::test_markdown_escapes_cells; B2 in
tests/cli/test_render.py::test_an_interrupted_render_leaves_the_previous_output; B5 in
tests/template/test_render.py::test_rendered_dockerfile_matches_golden[forms]; B6 in
tests/template/test_render.py (test_heredoc_with_its_own_interpreter_is_refused,
test_parser_directive_stays_first); B8 in tests/cli/test_render.py
(test_output_equal_to_the_template_is_refused,
test_default_output_is_beside_the_template_and_never_the_template); B12 in
tests/inventory/test_pyenv.py::test_deep_and_hidden_environments_are_found_and_locked.
"""
