"""Credentials for the git command line, never in its argv or in a message.

HTTP(S): a credential helper given through GIT_CONFIG_* variables (not `-c`, which would be
in argv) answers `get` with the user name and the password from the child's environment.
The password is read from --password-file on every run, so a rotated Kubernetes Secret is
picked up without a restart. SSH: GIT_SSH_COMMAND with the key, the known_hosts file and
StrictHostKeyChecking=yes (git-sync's choice too), BatchMode so nothing ever prompts.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from gitsync.config import GitSyncConfig
from podkit.options import mask_credentials

# Run by git through the shell (the leading '!'); it names variables, holds no secret.
_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    'printf "username=%s\\npassword=%s\\n" "$GITSYNC_AUTH_USERNAME" "$GITSYNC_AUTH_PASSWORD"; }; f'
)


@dataclass(frozen=True)
class Auth:
    username: str = ""
    password: str = ""
    password_file: str = ""
    ssh_command: str = ""

    @classmethod
    def from_config(cls, config: GitSyncConfig) -> Auth:
        ssh = ""
        if config.ssh:
            parts = ["ssh", "-i", config.ssh_key_file, "-o", "IdentitiesOnly=yes",
                     "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
            if config.ssh_known_hosts:
                parts += ["-o", f"UserKnownHostsFile={config.ssh_known_hosts_file}",
                          "-o", "StrictHostKeyChecking=yes"]
            else:
                parts += ["-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no"]
            ssh = shlex.join(parts)
        return cls(config.username, config.password, config.password_file, ssh)

    def current_password(self) -> str:
        if self.password_file:
            return Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        return self.password

    def env(self) -> dict[str, str]:
        """Variables for one git run: config entries first, then the secrets' values."""
        config = [("safe.directory", "*")]  # a volume owned by another uid (fsGroup)
        env: dict[str, str] = {}
        if self.username:
            # An empty value first resets helpers from other config files.
            config += [("credential.helper", ""), ("credential.helper", _HELPER)]
            env["GITSYNC_AUTH_USERNAME"] = self.username
            env["GITSYNC_AUTH_PASSWORD"] = self.current_password()
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        if self.ssh_command:
            env["GIT_SSH_COMMAND"] = self.ssh_command
        return env

    def secrets(self) -> tuple[str, ...]:
        try:
            password = self.current_password()
        except OSError:
            password = ""
        return (password,) if password else ()

    def redact(self, text: str) -> str:
        """`text` without the password (as is, or in a URL's user info)."""
        for secret in self.secrets():
            text = text.replace(secret, "<redacted>")
        return mask_credentials(text)
