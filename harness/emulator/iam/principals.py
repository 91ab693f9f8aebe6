"""Who makes each request: the credentials the local AWS hands out, and the role behind them.

A job container gets credentials of its own for the job's RoleArn (session: the job's name);
the Step Functions engine calls with credentials for the execution's role (session: its
state machine's execution). Any other access key is the user, an administrator, as the
account's owner is on AWS: their calls are not evaluated. The user's shell, prepared by
`emulator env`, gets a session of its own (SHELL_SESSION) of the execution role it names, so
that STS answers an assumed role as it does in a SageMaker notebook (SDKs look for one); its
calls stay the owner's: not evaluated.

The keys are derived from the role and session, so the same pair always gets the same key
(the engine computes them where it makes its clients) and a restart keeps them valid.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import threading

# The execution role `emulator env` prepares and the session its shell acts in.
SHELL_ROLE_NAME = "mlharness-sagemaker-execution"
SHELL_SESSION = "mlharness-shell"


@dataclasses.dataclass(frozen=True)
class Principal:
    role_arn: str
    session: str
    of_job: bool  # a SageMaker job's container (the session is the job's name)
    of_owner: bool = False  # the user's shell: named as the role's session, acting as the owner

    @property
    def account(self) -> str:
        parts = self.role_arn.split(":")
        return parts[4] if len(parts) > 5 else ""

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]

    @property
    def arn(self) -> str:
        """As AWS names an assumed role's session in its messages."""
        parts = self.role_arn.split(":")
        partition = parts[1] if len(parts) > 5 else "aws"
        return f"arn:{partition}:sts::{self.account}:assumed-role/{self.role_name}/{self.session}"


_known: dict[str, Principal] = {}
_lock = threading.Lock()


def credentials_for(
    role_arn: str, session: str, of_job: bool = False, of_owner: bool = False
) -> dict[str, str]:
    """Environment-style credentials for the role's session, remembered for attribution."""
    digest = hashlib.sha256(f"{role_arn}\0{session}".encode()).digest()
    key_id = "ASIA" + base64.b32encode(digest).decode()[:16]
    with _lock:
        _known[key_id] = Principal(role_arn, session[:64], of_job, of_owner)
    secret = base64.b64encode(hashlib.sha256(digest).digest()).decode()[:40]
    return {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_SESSION_TOKEN": f"local-{key_id}",
    }


def of_access_key(key_id: str | None) -> Principal | None:
    """The role session behind an access key the local AWS handed out; None for anyone else."""
    if not key_id:
        return None
    with _lock:
        return _known.get(key_id)


def shell_role_arn(account: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role/{SHELL_ROLE_NAME}"


def shell_credentials(account: str, partition: str = "aws") -> dict[str, str]:
    """The user's shell's credentials in `account` (the same on every start: the local AWS
    registers them as it starts, `emulator env` hands them out)."""
    return credentials_for(shell_role_arn(account, partition), SHELL_SESSION, of_owner=True)


def user_id(principal: Principal, role_id: str | None) -> str:
    """GetCallerIdentity's UserId for a role session: the role's unique id and the session."""
    if role_id is None:
        digest = hashlib.sha256(principal.role_arn.encode()).digest()
        role_id = "AROA" + base64.b32encode(digest).decode()[:17]
    return f"{role_id}:{principal.session}"
