"""The schemathesis check that every answer respects the roles the
published description gives each operation: a device whose role the
operation's `security` does not list never gets a 2xx. Loaded by
api_fuzz.py through SCHEMATHESIS_HOOKS; the role of the token in use is
in API_FUZZ_ROLE."""

import os

import schemathesis

ROLE = os.environ.get("API_FUZZ_ROLE", "")


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
