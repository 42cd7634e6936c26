"""The schemathesis check that every answer respects the roles the
published description gives each operation: a device whose role the
operation's `security` does not list never gets a 2xx. Loaded by
api_fuzz.py through SCHEMATHESIS_HOOKS; the role of the token in use is
in API_FUZZ_ROLE."""

import ast
import os
import threading

import schemathesis

ROLE = os.environ.get("API_FUZZ_ROLE", "")

# Hypothesis describes its strategies by parsing their lambdas' source with
# `ast.parse`, from both of schemathesis' worker threads. CPython before
# 3.11.8 keeps the AST constructor's recursion depth in state the threads
# share, and two parses at once can end in "SystemError: AST constructor
# recursion depth mismatch" (python/cpython#106905): a runtime error of the
# tool that says nothing about the API. One parse at a time.
_parse = ast.parse
_parsing = threading.Lock()


def _one_parse_at_a_time(*args, **kwargs):
    with _parsing:
        return _parse(*args, **kwargs)


ast.parse = _one_parse_at_a_time


@schemathesis.check
def roles_respected(ctx, response, case):
    security = case.operation.definition.raw.get("security")
    if not security or not ROLE:
        return None  # an open endpoint (health, enroll, the description)
    allowed = {role for requirement in security for roles in requirement.values() for role in roles}
    if 200 <= response.status_code < 300 and ROLE not in allowed:
        raise AssertionError(
            f"a {ROLE} device got {response.status_code} from {case.method} {case.path}, "
            f"which allows {sorted(allowed)} only"
        )
    return None
