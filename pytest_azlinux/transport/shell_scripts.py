"""The sh text the persistent shell is sent besides the setup: a command's frame, the kill
of a command's process tree, and the sweep of what a lost shell left (``shell.py`` runs it)."""

from __future__ import annotations

import base64
import re
import secrets
import shlex

TAG_VARIABLE = "AZL_SHELL"
# Where the private directory may go, in this order; its name starts with the shell's tag,
# so a sweep finds it even when the start line never arrived.
CANDIDATE_DIRS = '/dev/shm "$TMPDIR" /tmp /var/tmp "$HOME"'


def new_token() -> str:
    return secrets.token_hex(8)


def frame(script: str, token: str, stdin: bytes | None, *, pipes: bool = False) -> str:
    if stdin is None and not pipes and simple_command(script):
        files = '</dev/null >"$azl_d/$azl_n.o" 2>"$azl_d/$azl_n.e"'
        return f"azl_n=$((azl_n+1)); echo {token} S 0; {script} {files}; azl_end {token} $?\n"
    command = f"( eval {shlex.quote(script)} )"
    no_stdin = "</dev/null " if stdin is None else ""
    if pipes:  # the exit code travels in a file: a pipeline's status is its last cat's
        command = (
            f'( {{ {{ {command} {no_stdin}2>&3 3>&-; echo $? >"$azl_d/$azl_n.r"; }} '
            '| cat >"$azl_d/$azl_n.o"; } 3>&1 | cat >"$azl_d/$azl_n.e"; '
            'azl_r=; read -r azl_r <"$azl_d/$azl_n.r" 2>/dev/null; exit "${azl_r:-1}" )'
        )
    else:
        command = f'{command} {no_stdin}>"$azl_d/$azl_n.o" 2>"$azl_d/$azl_n.e"'
    if stdin is None:
        launch = f"{command} &"
    else:
        encoded = base64.encodebytes(stdin).decode()
        launch = f"base64 -d <<'{token}IN' 2>/dev/null | {command} &\n{encoded}{token}IN\n"
    return f"azl_n=$((azl_n+1)); {launch} azl_fin {token}\n"


# A word the shell takes as it is: no expansion, no operator, no quote but a whole '...'.
_LITERAL_WORD = r"(?:[A-Za-z0-9_@%+,./:=-]|'[^']*')+"
_SIMPLE_COMMAND = re.compile(rf"[A-Za-z0-9_./-]+(?: +{_LITERAL_WORD})*")
# Builtins and keywords of dash, bash and busybox ash, but those that change nothing.
_SHELL_WORDS = frozenset({
    ".", "alias", "bg", "bind", "break", "builtin", "caller", "cd", "chdir", "command", "compgen",
    "complete", "compopt", "continue", "coproc", "declare", "dirs", "disown", "enable", "eval",
    "exec", "exit", "export", "fc", "fg", "function", "getopts", "hash", "help", "history",
    "jobs", "kill", "let", "local", "logout", "mapfile", "popd", "printf", "pushd", "read",
    "readarray", "readonly", "return", "select", "set", "shift", "shopt", "source", "suspend",
    "time", "times", "trap", "type", "typeset", "ulimit", "umask", "unalias", "unset", "wait",
    "case", "do", "done", "elif", "else", "esac", "fi", "for", "if", "in", "then", "until",
    "while",
})


def simple_command(script: str) -> bool:
    """Whether ``script`` is one program (or harmless builtin) with literal arguments, safe
    to run in the persistent shell itself: nothing in it can change the shell's state."""
    if not _SIMPLE_COMMAND.fullmatch(script):
        return False
    program = script.split(" ", 1)[0]
    return "/" in program or (program not in _SHELL_WORDS and not program.startswith("azl_"))


def kill_script(pid: int, *, spare_root: bool = False) -> str:
    """Kill a command and every process below it (no single quotes: callers wrap it in them).

    Each process found is stopped first, so none can fork out of the walk; then TERM, and
    KILL for what is left a second later. ``spare_root``: only what is below ``pid`` (a
    simple command running in the shell ``pid``, which waits for it and goes on).
    """
    start = (f'a=" {pid} "; kill -0 {pid} 2>/dev/null || exit 0; ' if spare_root
             else f'a=" {pid} "; kill -STOP {pid} 2>/dev/null || exit 0; ')
    spare = f'a=" ${{a# {pid} }}"; ' if spare_root else ""
    return (
        start
        + _TREE_WALK
        + spare
        + 'kill -TERM $a 2>/dev/null; kill -CONT $a 2>/dev/null; '
        'i=0; while [ $i -lt 10 ]; do i=$((i+1)); s=; '
        'for p in $a; do l=; read -r l 2>/dev/null </proc/$p/stat; set -- ${l##*) }; '
        '[ -n "$l" ] && [ "$1" != Z ] && s="$s $p"; done; '
        '[ -z "$s" ] && exit 0; sleep 0.1; done; '
        'a=" $s "; kill -STOP $a 2>/dev/null; '
        + _TREE_WALK
        + "kill -KILL $a 2>/dev/null; true"
    )


# Adds to $a (" pid pid ... ") every process whose parent is in it, stopping each, until no
# new one turns up. /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold ") ".
_TREE_WALK = (
    "n=1; while [ $n = 1 ]; do n=0; "
    "for f in /proc/[0-9]*/stat; do "
    'l=; read -r l <"$f" || continue; set -- ${l##*) }; '
    'p=${f#/proc/}; p=${p%/stat}; '
    'case "$a" in *" $2 "*) case "$a" in *" $p "*) ;; '
    '*) a="$a$p "; kill -STOP $p; n=1;; esac;; esac; '
    "done 2>/dev/null; done; "
)


def sweep_script(tag: str, workdir: str | None, session: int | None = None) -> str:
    """End everything a shell started; remove its private directory.

    Ended: every process of the shell's own ``session`` (what its commands started, also
    with a cleared environment or through ``sudo``), every process whose environment
    carries ``AZL_SHELL=<tag>`` (what left the session but kept the tag), and every process
    below those. Each is stopped first so none forks out of the walk, then TERM, then KILL.
    The sweeper itself and its parent (``sudo`` for a root shell) are spared: it may run
    in the shell's process. A user's sweep cannot signal root's processes; ``sudo``, which
    it can signal, passes TERM on to its command.

    Runs in a process without the tag (a new exec, a side channel). No single quotes.
    """
    # A directory under a $TMPDIR with a single quote in its name is left to the shell's
    # own EXIT trap: no way to name it here without a quote.
    remove = f"rm -rf {_double_quoted(workdir)}; " if workdir and "'" not in workdir else ""
    # ... and the directory of a shell whose start line never arrived: named by its tag
    remove += f"for t in {CANDIDATE_DIRS}; do [ -n \"$t\" ] && rm -rf \"$t\"/{tag}.??????; done; "
    in_session = (
        "for f in /proc/[0-9]*/stat; do "
        'l=; read -r l <"$f" || continue; set -- ${l##*) }; '
        f'[ "$4" = {session} ] || continue; '
        'p=${f#/proc/}; p=${p%/stat}; case "$a" in *" $p "*) ;; *) a="$a$p ";; esac; '
        "done 2>/dev/null; "
    ) if session is not None else ""
    return (
        f"e={TAG_VARIABLE}={tag}; me=$$; up=$PPID; "
        "for s in TERM KILL KILL KILL; do a=\" \"; "
        'l=$(grep -lzx "$e" /proc/[0-9]*/environ 2>/dev/null); '
        'for f in $l; do f=${f#/proc/}; a="$a${f%/environ} "; done; '
        + in_session
        + _SPARE_SELF
        + '[ -z "${a## }" ] && break; kill -STOP $a 2>/dev/null; '
        + _TREE_WALK
        + _SPARE_SELF
        + 'kill -$s $a 2>/dev/null; kill -CONT $a 2>/dev/null; '
        "sleep 0.2; done; "
        + remove
        + "true"
    )


# Takes the sweeper ($me) and its parent ($up) out of $a (" pid pid ... ").
_SPARE_SELF = (
    'b=" "; for p in $a; do [ "$p" = "$me" ] || [ "$p" = "$up" ] || b="$b$p "; done; a=$b; '
)


def _double_quoted(text: str) -> str:
    """``text`` as one shell word in double quotes (the callers' single quotes stay intact)."""
    escaped = "".join("\\" + c if c in '\\"$`' else c for c in text)
    return f'"{escaped}"'
