#!/bin/sh
# Container-escape probe: looks, from inside a container, at what a compromised workload
# could reach. Prints one JSON line per check:
#   {"check":"<id>","found":true|false|null,"detail":"...","data":{"k":"v",...}}
# found=true: the risky condition is present; false: absent; null: could not tell (detail
# says why). Severity and verdict are decided by pytest_azlinux.analyse.escape, not here.
#
# Each check tries the operation it reports on, not a stand-in for it: "writable" means
# the file opened for writing (O_WRONLY|O_APPEND, nothing written), "reachable" means the
# syscall itself got past seccomp and reached the kernel code that reads its arguments.
# An operation that could not be tried is reported as not tried (found=null), never as
# blocked.
#
# Safety: nothing is written outside a private temp dir (removed on exit): kernel files are
# opened for writing and closed without a byte written; sensitive syscalls run in a child
# process with invalid or no-op arguments the kernel rejects before acting; network checks
# contact only the addresses given as arguments or environment (none given -> skipped).
# Raw syscalls (clone, keyctl, add_key, mount...) that no busybox applet makes go through
# python3's ctypes when the container has python3, else (x86_64) through a 512-byte static
# ELF written to the temp dir; where neither runs they are reported not tried.
#
# Arguments (or the same names in the environment, upper-case with an AZL_ prefix):
#   imds=HOST[:PORT] wireserver=HOST kubelet=HOST wireserver_ports="80 32526"
#   kubelet_ports="10250 10255" mount_allow="/usr /lib" node_ip=IP net_timeout=1
#   host_ns="pid:[N] ipc:[N] uts:[N] net:[N]"  (the host's own namespaces, when the host
#   itself is not in the initial ones: a nested host such as a lab host or a kind node)
# POSIX sh; tested under busybox sh. Uses busybox applets when busybox is present.

for arg in "$@"; do
    case $arg in
        imds=*) AZL_IMDS_ADDRESS=${arg#*=} ;;
        wireserver=*) AZL_WIRESERVER_ADDRESS=${arg#*=} ;;
        kubelet=*) AZL_KUBELET_ADDRESS=${arg#*=} ;;
        wireserver_ports=*) AZL_WIRESERVER_PORTS=${arg#*=} ;;
        kubelet_ports=*) AZL_KUBELET_PORTS=${arg#*=} ;;
        mount_allow=*) AZL_MOUNT_ALLOW=${arg#*=} ;;
        node_ip=*) AZL_NODE_IP=${arg#*=} ;;
        host_ns=*) AZL_HOST_NS=${arg#*=} ;;
        net_timeout=*) AZL_NET_TIMEOUT=${arg#*=} ;;
        *) echo "escape.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done
IMDS=${AZL_IMDS_ADDRESS:-}
WIRESERVER=${AZL_WIRESERVER_ADDRESS:-}
KUBELET=${AZL_KUBELET_ADDRESS:-}
WS_PORTS=${AZL_WIRESERVER_PORTS:-80 32526}
KL_PORTS=${AZL_KUBELET_PORTS:-10250 10255}
MOUNT_ALLOW=${AZL_MOUNT_ALLOW:-}
NODE_IP=${AZL_NODE_IP:-}
HOST_NS=${AZL_HOST_NS:-}
NET_TIMEOUT=${AZL_NET_TIMEOUT:-1}
PROBE_VERSION=3

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}
export PATH LC_ALL=C
BB=${AZL_BUSYBOX:-$(command -v busybox 2>/dev/null)}
bb() { if [ -n "$BB" ]; then "$BB" "$@"; else "$@"; fi; }

uptime_cs() { read -r up _ </proc/uptime 2>/dev/null && echo "${up%.*}${up#*.}"; }
START_CS=$(uptime_cs)

# --- JSON output -------------------------------------------------------------------------
jstr() {  # escape a value for a JSON string; fork only when escaping is needed
    case $1 in
        *[\"\\]* | *[![:print:]]*)
            printf '%s' "$1" | tr '\n\t\r' '   ' | tr -d '\000-\037' \
                | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' ;;
        *) printf '%s' "$1" ;;
    esac
}
emit() {  # emit ID FOUND(true|false|null) DETAIL [KEY VALUE]...
    _line="{\"check\":\"$1\",\"found\":$2,\"detail\":\"$(jstr "$3")\""
    shift 3
    if [ $# -ge 2 ]; then
        _line="$_line,\"data\":{"
        _sep=
        while [ $# -ge 2 ]; do
            _line="$_line$_sep\"$1\":\"$(jstr "$2")\""
            _sep=,
            shift 2
        done
        _line="$_line}"
    fi
    printf '%s}\n' "$_line"
}
yesno() { if [ "$1" = true ]; then echo yes; else echo no; fi; }

# --- private temp dir (the only place the probe writes) -----------------------------------
TMP=
for base in "${TMPDIR:-/tmp}" /tmp /dev/shm /run; do
    TMP=$(bb mktemp -d "$base/azl-escape.XXXXXX" 2>/dev/null) && break
    TMP=
done
cleanup() { [ -n "$TMP" ] && rm -rf "$TMP"; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# --- facts read once --------------------------------------------------------------------
status_field() { sed -n "s/^$1:[[:space:]]*//p" /proc/self/status; }
CAPEFF=$(status_field CapEff); CAPPRM=$(status_field CapPrm); CAPBND=$(status_field CapBnd)
CAPAMB=$(status_field CapAmb); CAPINH=$(status_field CapInh)
NNP=$(status_field NoNewPrivs); SECCOMP=$(status_field Seccomp)
SECCOMP_FILTERS=$(status_field Seccomp_filters)
UIDS=$(status_field Uid)
set -- $UIDS; EUID_=${2:-$1}
LAST_CAP=$(cat /proc/sys/kernel/cap_last_cap 2>/dev/null || echo 40)
EFF=$((0x${CAPEFF:-0}))
MOUNTINFO=$(cat /proc/self/mountinfo 2>/dev/null)

CAP_NAMES="chown dac_override dac_read_search fowner fsetid kill setgid setuid setpcap
linux_immutable net_bind_service net_broadcast net_admin net_raw ipc_lock ipc_owner sys_module
sys_rawio sys_chroot sys_ptrace sys_pacct sys_admin sys_boot sys_nice sys_resource sys_time
sys_tty_config mknod lease audit_write audit_control setfcap mac_override mac_admin syslog
wake_alarm block_suspend audit_read perfmon bpf checkpoint_restore"
cap_number() { _i=0; for _n in $CAP_NAMES; do [ "$_n" = "$1" ] && { echo $_i; return; }; _i=$((_i+1)); done; echo -1; }
has_cap() { _b=$(cap_number "$1"); [ "$_b" -ge 0 ] && [ $(( (EFF >> _b) & 1 )) -eq 1 ]; }
cap_list() {  # names of the bits set in hex mask $1
    _m=$((0x${1:-0})); _i=0; _out=
    while [ $_i -le "$LAST_CAP" ] && [ $_i -le 62 ]; do
        if [ $(( (_m >> _i) & 1 )) -eq 1 ]; then
            set -- $CAP_NAMES
            if [ $_i -lt $# ]; then shift $_i; _out="$_out $1"; else _out="$_out cap_$_i"; fi
        fi
        _i=$((_i+1))
    done
    echo "${_out# }"
}

# mount entry covering a path: "MOUNTPOINT FSTYPE OPTIONS(per-mount,super)" (last, longest)
mount_of() {
    printf '%s\n' "$MOUNTINFO" | awk -v p="$1" '
        { split($0, halves, " - "); split(halves[2], s, " ")
          mp = $5; gsub(/\\040/, " ", mp)
          if (mp == p || mp == "/" || index(p, mp "/") == 1) {
              if (length(mp) >= blen) { blen = length(mp); best = mp " " s[1] " " $6 "," s[3] } } }
        END { print best }'
}
mount_rw() {  # true when the mount covering $1 is read-write (per-mount and superblock)
    set -- $(mount_of "$1")
    case ",$3," in *,ro,*) return 1 ;; esac
    [ -n "$1" ]
}
# open for writing and close, writing nothing: mount options, permissions, capabilities and
# LSMs all have their say (busybox `test -w` is true for root even on a read-only mount, and
# false for a non-root process whose CAP_DAC_OVERRIDE would let it write)
writable() { [ -e "$1" ] && [ ! -d "$1" ] && ( : >>"$1" ) 2>/dev/null; }

# run a command in a child, classify the outcome of the syscall it makes
errno_class() {  # RC OUTPUT -> blocked:EPERM | blocked:EACCES | absent:ENOSYS | reached:<what>
    if [ "$1" -eq 0 ]; then echo reached:ok; return; fi
    if [ "$1" -eq 127 ]; then echo not-tried:no-tool; return; fi  # the applet is missing
    if [ "$1" -eq 159 ]; then echo blocked:SIGSYS; return; fi    # seccomp killed it
    case $2 in
        *"applet not found"* | *": not found"*) echo not-tried:no-tool ;;
        *"Operation not permitted"*) echo blocked:EPERM ;;
        *"Permission denied"*) echo blocked:EACCES ;;
        *"not implemented"* | *"does not support"*) echo absent:ENOSYS ;;
        *"Invalid argument"*) echo reached:EINVAL ;;
        *"No such file"*) echo reached:ENOENT ;;
        *"Exec format"* | *"Invalid module format"*) echo reached:ENOEXEC ;;
        *) echo "reached:rc=$1" ;;
    esac
}
try_child() { _o=$( ("$@") 2>&1 </dev/null); errno_class $? "$_o"; }
# NAME=RESULT... -> true when one was reached, null when none was but one was not tried
tri() { case " $* " in *=reached:*) echo true ;; *=not-tried:*) echo null ;; *) echo false ;; esac; }

# --- network checks start first (in the background) so their timeouts overlap -------------
with_timeout() { "$BB" timeout "$NET_TIMEOUT" "$BB" "$@"; }  # busybox wget/nc options
http_status() {  # URL [HEADER] -> HTTP status, or unreachable:<reason>
    if [ -n "${2:-}" ]; then
        _o=$(with_timeout wget -S -q -O /dev/null --no-check-certificate --header "$2" "$1" 2>&1)
    else
        _o=$(with_timeout wget -S -q -O /dev/null --no-check-certificate "$1" 2>&1)
    fi
    _s=$(printf '%s\n' "$_o" | sed -n 's/.*HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' | head -n 1)
    if [ -n "$_s" ]; then echo "$_s"; return; fi
    case $_o in
        *refused*) echo unreachable:refused ;;
        *"timed out"* | *Terminated* | "") echo unreachable:timeout ;;
        *) echo "unreachable:$(printf '%s' "$_o" | tail -n 1 | cut -c1-80)" ;;
    esac
}
tcp_open() {  # HOST PORT -> open | closed:<reason>
    _o=$(with_timeout nc -w "$NET_TIMEOUT" "$1" "$2" -e true 2>&1 </dev/null)
    if [ $? -eq 0 ]; then echo open; return; fi
    case $_o in
        *refused*) echo closed:refused ;;
        *) echo closed:timeout ;;
    esac
}
host_of() { case $1 in *:*) echo "${1%:*}" ;; *) echo "$1" ;; esac; }
port_of() { case $1 in *:*) echo "${1##*:}" ;; *) echo "$2" ;; esac; }

net_imds() {
    if [ -z "$IMDS" ]; then
        emit imds null "skipped: no IMDS address configured (suites.escape.imds_address)"; return
    fi
    _h=$(host_of "$IMDS"); _p=$(port_of "$IMDS" 80)
    _s=$(http_status "http://$_h:$_p/metadata/instance?api-version=2021-02-01" "Metadata: true")
    case $_s in
        unreachable:*) emit imds false "IMDS at $_h:$_p ${_s#*:}" address "$_h:$_p" status "$_s" ;;
        *) emit imds true "IMDS at $_h:$_p answered HTTP $_s (with Metadata: true)" \
               address "$_h:$_p" status "$_s" ;;
    esac
}
net_wireserver() {
    if [ -z "$WIRESERVER" ]; then
        emit wireserver null "skipped: no WireServer address configured (suites.escape.wireserver_address)"
        return
    fi
    _open=; _res=
    for _p in $WS_PORTS; do
        _r=$(tcp_open "$WIRESERVER" "$_p")
        _res="$_res $_p=$_r"
        [ "$_r" = open ] && _open="$_open $_p"
    done
    if [ -n "$_open" ]; then
        emit wireserver true "WireServer $WIRESERVER open on port(s)${_open}" address "$WIRESERVER" ports "${_res# }"
    else
        emit wireserver false "WireServer $WIRESERVER unreachable:${_res}" address "$WIRESERVER" ports "${_res# }"
    fi
}
net_kubelet() {
    if [ -z "$KUBELET" ]; then
        emit kubelet.api null "skipped: no kubelet address configured (suites.escape.kubelet_address)"
        return
    fi
    _anon=; _res=
    for _p in $KL_PORTS; do
        _t=$(tcp_open "$KUBELET" "$_p")
        if [ "$_t" = open ]; then
            if [ "$_p" = 10250 ]; then _u="https://$KUBELET:$_p/pods"; else _u="http://$KUBELET:$_p/pods"; fi
            _s=$(http_status "$_u")
            _res="$_res $_p=open:$_s"
            [ "$_s" = 200 ] && _anon="$_anon $_p"
        else
            _res="$_res $_p=$_t"
        fi
    done
    if [ -n "$_anon" ]; then
        emit kubelet.api true "kubelet $KUBELET serves /pods anonymously (HTTP 200) on port(s)${_anon}" \
            address "$KUBELET" ports "${_res# }"
    else
        emit kubelet.api false "kubelet $KUBELET: no anonymous /pods:${_res}" address "$KUBELET" ports "${_res# }"
    fi
}
NET_OUT=
if [ -z "$BB" ]; then  # the HTTP/TCP clients used are busybox wget and nc
    net_imds() { emit imds null "skipped: busybox (wget, nc) not found in the container"; }
    net_wireserver() { emit wireserver null "skipped: busybox (wget, nc) not found in the container"; }
    net_kubelet() { emit kubelet.api null "skipped: busybox (wget, nc) not found in the container"; }
fi
if [ -n "$TMP" ]; then
    NET_OUT="$TMP/net"
    { net_imds >"$NET_OUT.1"; } &
    { net_wireserver >"$NET_OUT.2"; } &
    { net_kubelet >"$NET_OUT.3"; } &
fi

# --- raw syscalls (python3 ctypes), each in a forked child with arguments the kernel rejects
# before it acts; EPERM/EACCES/SIGSYS: blocked, ENOSYS/ENODEV: absent, other errors or
# success: reached (the kernel looked at the arguments). One python3 run for all of them.
RAW_PY='
import ctypes, errno, os, platform, signal, sys
tmp = sys.argv[1]
nrs = {"x86_64": (56, 250, 248, 249, 321, 298, 165, 175, 313, 101, 310, 323, 425),
       "aarch64": (220, 219, 217, 218, 280, 241, 40, 105, 273, 117, 270, 282, 425)}
nr = nrs.get(platform.machine())
if nr is None:
    print("arch=" + platform.machine()); raise SystemExit
libc = ctypes.CDLL(None, use_errno=True)
L = ctypes.c_long
image = ctypes.create_string_buffer(64)  # 64 zero bytes: not an ELF image, never loads
fd = os.open(tmp + "/m.ko", os.O_RDONLY)
ro = 1 | 2 | 4 | 8  # MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC
calls = (
    ("clone(CLONE_NEWUSER)", nr[0], (L(0x10000000 | 17), 0, 0, 0, 0)),  # + SIGCHLD
    ("keyctl", nr[1], (L(-1), 0, 0, 0, 0)),
    ("add_key", nr[2], (b"user", None, None, 0, 0)),  # keyring 0: EINVAL
    ("request_key", nr[3], (b"azl-probe-no-such-type", b"azl", None, 0)),  # ENOKEY
    ("bpf", nr[4], (ctypes.c_int(-1), None, 0)),
    ("perf_event_open", nr[5], (None, 0, -1, -1, 0)),
    ("mount(cgroup)", nr[6], (b"cgroup", (tmp + "/mnt").encode(), b"cgroup", L(ro),
                              b"azl_probe_invalid_option")),  # the option: EINVAL
    ("init_module", nr[7], (image, 64, b"")),
    ("finit_module", nr[8], (fd, b"", 0)),
    ("userfaultfd", nr[11], (ctypes.c_int(-1),)),
    ("io_uring_setup", nr[12], (0, None)),
)
out = []
for name, number, args in calls:
    pid = os.fork()
    if pid == 0:
        try:
            rc = libc.syscall(L(number), *args)
            e = ctypes.get_errno()
            if rc > 0 and name.startswith("clone"):
                os.waitpid(rc, 0)
            os._exit(0 if rc >= 0 else min(e, 254) or 254)
        except BaseException:
            os._exit(255)
    status = os.waitpid(pid, 0)[1]
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        res = "blocked:" + (signal.Signals(sig).name if sig == signal.SIGSYS else "signal-%d" % sig)
    else:
        e = os.WEXITSTATUS(status)
        if e == 0:
            res = "reached:ok"
        elif e == 255:
            res = "not-tried:python-error"
        elif e in (errno.EPERM, errno.EACCES):
            res = "blocked:" + errno.errorcode[e]
        elif e in (errno.ENOSYS, errno.ENODEV):
            res = "absent:" + errno.errorcode[e]
        else:
            res = "reached:" + errno.errorcode.get(e, str(e))
    out.append(name + "=" + res)
print(" ".join(out))
'
# Without python3, on x86_64: the same calls through a 512-byte static ELF written to the temp
# dir and run once per call. Bytes 0-119: ELF header and one read-only, executable PT_LOAD of
# the whole file at 0x400000; 120-192, the code:
#   mov rax,[rip+0x81]; mov rdi,[rip+0x82]; mov rsi,[rip+0x83]; mov rdx,[rip+0x84]
#   mov r10,[rip+0x85]; mov r8,[rip+0x86]; mov r9,[rip+0x87]   (the 7 words at 256)
#   syscall; mov rdi,rax; test rdi,rdi; jns 1f; neg rdi; jmp 2f; 1: xor edi,edi
#   2: mov eax,231; syscall                                      (exit_group(errno or 0))
# 256-311: the syscall number and its 6 arguments; 312-439: the string arguments; 440-503:
# 64 zero bytes (the invalid module image). Exit status: 0 success, N errno N, 159 SIGSYS.
ELF_X86_64='\177\105\114\106\002\001\001\000\000\000\000\000\000\000\000\000\002\000\076'
ELF_X86_64="$ELF_X86_64"'\000\001\000\000\000\170\000\100\000\000\000\000\000\100\000\000\000\000\000'
ELF_X86_64="$ELF_X86_64"'\000\000\000\000\000\000\000\000\000\000\000\000\000\000\100\000\070\000\001'
ELF_X86_64="$ELF_X86_64"'\000\000\000\000\000\000\000\001\000\000\000\005\000\000\000\000\000\000\000'
ELF_X86_64="$ELF_X86_64"'\000\000\000\000\000\000\100\000\000\000\000\000\000\000\100\000\000\000\000'
ELF_X86_64="$ELF_X86_64"'\000\000\002\000\000\000\000\000\000\000\002\000\000\000\000\000\000\000\020'
ELF_X86_64="$ELF_X86_64"'\000\000\000\000\000\000\110\213\005\201\000\000\000\110\213\075\202\000\000'
ELF_X86_64="$ELF_X86_64"'\000\110\213\065\203\000\000\000\110\213\025\204\000\000\000\114\213\025\205'
ELF_X86_64="$ELF_X86_64"'\000\000\000\114\213\005\206\000\000\000\114\213\015\207\000\000\000\017\005'
ELF_X86_64="$ELF_X86_64"'\110\211\307\110\205\377\171\005\110\367\337\353\002\061\377\270\347\000\000'
ELF_X86_64="$ELF_X86_64"'\000\017\005'
ELF_HEAD_LEN=193
le64() {  # VALUE -> appends its 8 little-endian bytes (two's complement) to _words, as octal
    _i=0
    while [ $_i -lt 64 ]; do
        _b=$(( ($1 >> _i) & 255 ))
        _words="$_words\\$((_b / 64))$((_b / 8 % 8))$((_b % 8))"
        _i=$((_i + 8))
    done
}
ELF_N=0
elf_call() {  # NR ARG... (a number, s:TEXT for a pointer to TEXT, zeros64) -> result
    _words=; _off=312; _n=0
    for _a in "$@"; do
        case $_a in
            s:*) _t=${_a#s:}; le64 $((0x400000 + _off)); _off=$((_off + ${#_t} + 1)) ;;
            zeros64) le64 $((0x400000 + 440)) ;;
            *) le64 "$_a" ;;
        esac
        _n=$((_n + 1))
    done
    while [ $_n -lt 7 ]; do le64 0; _n=$((_n + 1)); done
    [ $_off -le 440 ] || { echo not-tried:arguments-too-long; return; }
    ELF_N=$((ELF_N + 1)); _f="$TMP/sc.$ELF_N"  # a file per call: a clone child may still run one
    {
        printf "$ELF_X86_64"
        head -c $((256 - ELF_HEAD_LEN)) /dev/zero
        printf "$_words"
        for _a in "$@"; do case $_a in s:*) printf '%s\000' "${_a#s:}" ;; esac; done
        head -c $((512 - _off)) /dev/zero
    } >"$_f" && chmod 700 "$_f" || { echo not-tried:tmpdir-unwritable; return; }
    ( "$_f" 3<"$TMP/m.ko" ) >/dev/null 2>&1
    _rc=$?
    rm -f "$_f"
    case $_rc in
        0) echo reached:ok ;;
        1) echo blocked:EPERM ;; 13) echo blocked:EACCES ;; 159) echo blocked:SIGSYS ;;
        38) echo absent:ENOSYS ;; 19) echo absent:ENODEV ;;
        2) echo reached:ENOENT ;; 3) echo reached:ESRCH ;; 8) echo reached:ENOEXEC ;;
        9) echo reached:EBADF ;; 14) echo reached:EFAULT ;; 16) echo reached:EBUSY ;;
        22) echo reached:EINVAL ;; 95) echo reached:ENOTSUP ;; 126) echo reached:ENOKEY ;;
        129) echo reached:EKEYREJECTED ;;
        *) echo "reached:errno-$_rc" ;;
    esac
}
raw_elf() {  # NAME -> the result of the call the Python helper names NAME
    case $1 in
        "clone(CLONE_NEWUSER)") elf_call 56 $((0x10000000 | 17)) 0 0 0 0 ;;
        keyctl) elf_call 250 -1 0 0 0 0 ;;
        add_key) elf_call 248 s:user 0 0 0 0 ;;
        request_key) elf_call 249 s:azl-probe-no-such-type s:azl 0 0 ;;
        bpf) elf_call 321 -1 0 0 ;;
        perf_event_open) elf_call 298 0 0 -1 -1 0 ;;
        "mount(cgroup)") elf_call 165 s:cgroup "s:$TMP/mnt" s:cgroup 15 s:azl_probe_invalid_option ;;
        init_module) elf_call 175 zeros64 64 s: ;;
        finit_module) elf_call 313 3 s: 0 ;;
        userfaultfd) elf_call 323 -1 ;;
        io_uring_setup) elf_call 425 0 0 ;;
        *) echo not-tried:no-helper ;;
    esac
}

RAW=; RAW_HOW=; RAW_WHY=
if [ -z "$TMP" ]; then RAW_WHY=no-tmpdir
elif ! mkdir "$TMP/mnt" || ! head -c 64 /dev/zero >"$TMP/m.ko"; then RAW_WHY=tmpdir-unwritable
elif command -v python3 >/dev/null 2>&1; then
    RAW=$(python3 -c "$RAW_PY" "$TMP" 2>/dev/null </dev/null)
    case $RAW in
        "") RAW_WHY=python3-failed ;;
        arch=*) RAW_WHY="unknown-${RAW}"; RAW= ;;
        *) RAW_HOW=python3 ;;
    esac
elif [ "$(uname -m)" = x86_64 ]; then
    # getpid: the helper runs at all (a noexec temp dir refuses it)
    if [ "$(elf_call 39)" = reached:ok ]; then RAW_HOW=elf-x86_64; else RAW_WHY=no-python3,noexec-tmpdir; fi
else RAW_WHY=no-python3
fi
raw() {  # NAME -> the raw syscall's result, or not-tried:<why>
    if [ "$RAW_HOW" = elf-x86_64 ]; then raw_elf "$1"; return; fi
    for _r in $RAW; do case $_r in "$1="*) echo "${_r#*=}"; return ;; esac; done
    echo "not-tried:${RAW_WHY:-not-in-helper}"
}

# --- identity and confinement --------------------------------------------------------------
full=$(( (1 << (LAST_CAP + 1)) - 1 ))
if [ $(( EFF & full )) -eq "$full" ]; then f=true; else f=false; fi
emit caps.full $f "CapEff=$CAPEFF; full set for cap_last_cap=$LAST_CAP is $(printf '%016x' "$full")" \
    capeff "$CAPEFF" cap_last_cap "$LAST_CAP" full_mask "$(printf '%016x' "$full")"

# every effective capability is reported; what the profile allows is the analyser's call.
# found: any effective capability outside the runtime's default set, or any for non-root
dangerous=
for c in sys_admin sys_ptrace sys_module dac_read_search dac_override sys_rawio mknod net_admin \
    net_raw bpf perfmon sys_boot sys_time; do
    has_cap $c && dangerous="$dangerous $c"
done
effective=$(cap_list "$CAPEFF")
# setuid/setgid-root files where exec honours the bit (mount without nosuid): with
# no_new_privs off they make any user root; with CAP_SETFCAP file capabilities do the same
suid=; inert=0
for d in /bin /sbin /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin /usr/libexec; do
    [ -d "$d" ] && [ ! -L "$d" ] || continue  # /bin -> usr/bin: counted once
    found=$(find "$d" -maxdepth 1 -type f -user 0 \( -perm -4000 -o -perm -2000 \) 2>/dev/null \
        | head -n 20 | tr '\n' ' ')
    [ -n "$found" ] || continue
    set -- $(mount_of "$d")  # the directory's mount decides for its files
    case ",$3," in
        *,nosuid,*) set -- $found; inert=$((inert+$#)) ;;
        *) suid="$suid ${found% }" ;;
    esac
done
[ -n "$effective" ] && f=true || f=false
emit caps.dangerous $f "effective capabilities: ${effective:-none}; catalog-dangerous:${dangerous:- none}; uid $EUID_, NoNewPrivs=${NNP:-?}; setuid/setgid-root files honoured:${suid:- none} (on nosuid mounts: $inert)" \
    capeff "$CAPEFF" dangerous "${dangerous# }" effective "$effective" uid "$EUID_" \
    no_new_privs "${NNP:-}" setuid_files "${suid# }" setuid_inert "$inert"

f=false
if [ "${NNP:-0}" = 0 ] && { [ $((0x${CAPBND:-0})) -ne 0 ] || [ $((0x${CAPAMB:-0})) -ne 0 ]; }; then f=true; fi
emit caps.bounding $f "CapBnd=$CAPBND CapAmb=$CAPAMB NoNewPrivs=$NNP" \
    capbnd "$CAPBND" capamb "$CAPAMB" capprm "$CAPPRM" capinh "$CAPINH" bounding "$(cap_list "$CAPBND")"

[ "${NNP:-0}" = 0 ] && f=true || f=false
emit nnp $f "NoNewPrivs=${NNP:-unknown}" no_new_privs "${NNP:-}"

[ "${SECCOMP:-0}" = 0 ] && f=true || f=false
emit seccomp $f "Seccomp=${SECCOMP:-unknown} (0 none, 1 strict, 2 filter) filters=${SECCOMP_FILTERS:-?}" \
    mode "${SECCOMP:-}" filters "${SECCOMP_FILTERS:-}"

label=; lsm=
if label=$(cat /proc/self/attr/apparmor/current 2>/dev/null) && [ -n "$label" ]; then lsm=apparmor
elif label=$(cat /proc/self/attr/current 2>/dev/null | tr -d '\000') && [ -n "$label" ]; then
    case $label in *:*:*) lsm=selinux ;; *) lsm=apparmor ;; esac
else label=; fi
case $label in
    "") f=true; d="no LSM label (no SELinux or AppArmor confinement)" ;;
    unconfined* | *:spc_t:* | *:unconfined_t:* | *:kernel_t:* | *:initrc_t:*) f=true; d="unconfined: $label" ;;
    *) f=false; d="confined by $lsm: $label" ;;
esac
emit lsm.label $f "$d" lsm "$lsm" label "$label"

[ "$EUID_" = 0 ] && f=true || f=false
emit uid.root $f "Uid: $UIDS" uid "$UIDS"

uidmap=$(cat /proc/self/uid_map 2>/dev/null | tr -s ' \t' '  ' | sed 's/^ //')
[ "$uidmap" = "0 0 4294967295" ] && f=true || f=false
emit userns.host $f "uid_map: ${uidmap:-unreadable}" uid_map "$uidmap"

maxuserns=$(cat /proc/sys/user/max_user_namespaces 2>/dev/null)
# both ways in: unshare(2) (busybox unshare -U) and clone(2) with CLONE_NEWUSER (raw); a
# seccomp profile may filter one and not the other
r="unshare(CLONE_NEWUSER)=$(try_child bb unshare -U true) clone(CLONE_NEWUSER)=$(raw 'clone(CLONE_NEWUSER)')"
emit userns.create "$(tri $r)" "user namespace creation in a child: $r; max_user_namespaces=${maxuserns:-?}" \
    result "$r" max_user_namespaces "$maxuserns"

# --- namespaces (initial namespaces have fixed inode numbers, include/linux/proc_ns.h; a
# host that is itself nested has others, given in host_ns by whoever started the container) --
host_ns_of() { for _h in $HOST_NS; do case $_h in "$1:["*"]") echo "$_h"; return ;; esac; done; }
HOST_PID=false
for ns in pid:4026531836 ipc:4026531839 uts:4026531838; do
    name=${ns%%:*}; want="$name:[${ns#*:}]"; given=$(host_ns_of "$name")
    link=$(readlink "/proc/self/ns/$name" 2>/dev/null)
    f=false; ref="initial $want"
    [ "$link" = "$want" ] && f=true
    if [ -n "$given" ] && [ "$given" != "$want" ]; then
        ref="$ref, host's $given"
        [ "$link" = "$given" ] && f=true
    fi
    [ "$name" = pid ] && HOST_PID=$f
    emit "ns.host_$name" $f "/proc/self/ns/$name -> ${link:-unreadable} (host: $ref)" link "$link" \
        host "${given:-$want}"
done

netlink=$(readlink /proc/self/ns/net 2>/dev/null)
reasons=
given=$(host_ns_of net)
if [ -n "$given" ] && [ "$given" = "$netlink" ]; then reasons="$reasons host-netns:$given"; fi
if $HOST_PID && init_net=$(readlink /proc/1/ns/net 2>/dev/null) && [ "$init_net" = "$netlink" ]; then
    reasons="$reasons same-netns-as-host-pid1"
fi
ifaces=$(sed -n 's/^ *\([^:]*\):.*/\1/p' /proc/net/dev 2>/dev/null | tr '\n' ' ')
for i in $ifaces; do
    case $i in
        docker0 | cni0 | cbr0 | azure0 | azv* | flannel* | cilium_* | vxlan* | br-* | virbr* | kube-bridge | weave | tunl0 | calico* | eth1) reasons="$reasons iface:$i" ;;
    esac
done
if grep -q -e ' /run/systemd/' -e ' /var/run/dbus/' -e ' /run/dbus/' -e '@/containerd-shim' \
    -e ' /run/containerd/' /proc/net/unix 2>/dev/null; then reasons="$reasons host-unix-sockets"; fi
# the node's IP is a local address here: fib_trie lists it as "|-- ADDR" followed by
# "/32 host LOCAL" (exact comparison: 10.0.0.4 is not 10.0.0.45)
if [ -n "$NODE_IP" ] && awk -v ip="$NODE_IP" '
        $1 == "|--" { addr = $2; next }
        /\/32 host LOCAL/ && addr == ip { found = 1 }
        END { exit !found }' /proc/net/fib_trie 2>/dev/null; then
    reasons="$reasons node-ip-local"
fi
[ -n "$reasons" ] && f=true || f=false
emit ns.host_net $f "host network heuristics:${reasons:- none}" link "$netlink" interfaces "$ifaces" \
    reasons "${reasons# }"

# connect(2) to a unix socket and close it at once, nothing sent (python3; else not tried)
sock_connect() {
    if [ "$RAW_HOW" != python3 ]; then echo "not-tried:${RAW_WHY:-no-python3}"; return; fi
    python3 -c '
import errno, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(1)
try:
    s.connect(sys.argv[1])
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, "failed") if e.errno else "timeout")
' "$1" 2>/dev/null || echo not-tried:python3-failed
}
# --- sockets and host mounts ---------------------------------------------------------------
socks=
for s in /run/containerd/containerd.sock /var/run/containerd/containerd.sock /var/run/docker.sock \
    /run/docker.sock /var/run/crio/crio.sock /run/crio/crio.sock /run/podman/podman.sock \
    /var/run/dockershim.sock /run/k3s/containerd/containerd.sock /run/buildkit/buildkitd.sock; do
    [ -S "$s" ] && socks="$socks $s(connect=$(sock_connect "$s"))"
done
mounted=$(printf '%s\n' "$MOUNTINFO" | awk '$5 ~ /\.sock$/ { printf " %s", $5 }')
abstract=$(grep -c '@/containerd-shim' /proc/net/unix 2>/dev/null)
[ -n "$socks$mounted" ] || [ "${abstract:-0}" -gt 0 ] && f=true || f=false
emit sock.runtime $f "runtime sockets:${socks:- none}; mounted .sock:${mounted:- none}; abstract containerd-shim sockets: ${abstract:-0}" \
    sockets "${socks# }" mounted "${mounted# }" abstract_shim "${abstract:-0}"

hostmounts=$(printf '%s\n' "$MOUNTINFO" | awk -v allow=" $MOUNT_ALLOW " '
    BEGIN { split("proc sysfs tmpfs devpts mqueue cgroup cgroup2 securityfs debugfs tracefs pstore bpf configfs fusectl hugetlbfs autofs binfmt_misc nsfs rpc_pipefs efivarfs selinuxfs ramfs shm overlay squashfs", p, " ")
            for (i in p) pseudo[p[i]] = 1
            split("/etc/hosts /etc/resolv.conf /etc/hostname /dev/termination-log", a, " ")
            for (i in a) ok[a[i]] = 1 }
    { split($0, halves, " - "); split(halves[2], s, " "); fs = s[1]
      root = $4; mp = $5; gsub(/\\040/, " ", mp); gsub(/\\040/, " ", root)
      if (mp == "/") next                                  # the container root itself
      if (fs == "devtmpfs") { print "sensitive " mp "<=host:/dev" ; next }
      if (fs in pseudo) next
      if (mp in ok || index(allow, " " mp " ")) next
      sens = 0
      if (root == "/" ) sens = 1
      n = split("/etc /etc/kubernetes /var/lib/kubelet /var/log /var/run /run /root /home /var/lib/docker /var/lib/containerd /proc /sys /boot /var/lib/waagent", S, " ")
      for (i = 1; i <= n; i++) if (root == S[i] || index(root, S[i] "/") == 1) sens = 1
      if (root ~ /azure\.json$/ || mp ~ /\.sock$/) sens = 1
      print (sens ? "sensitive " : "other ") mp "<=host:" root }')
sens=$(printf '%s\n' "$hostmounts" | sed -n 's/^sensitive //p' | tr '\n' ' ')
other=$(printf '%s\n' "$hostmounts" | sed -n 's/^other //p' | tr '\n' ' ')
[ -n "$sens$other" ] && f=true || f=false
emit mount.hostpath $f "host paths mounted: sensitive: ${sens:-none}; other: ${other:-none}" \
    sensitive "${sens% }" other "${other% }"

# --- writable kernel interfaces (mount options + test -w; never opened for writing) --------
w=
for p in /proc/sys/kernel/core_pattern /proc/sys/kernel/modprobe /proc/sysrq-trigger \
    /proc/sys/vm/panic_on_oom /proc/sys/kernel/hostname; do
    writable "$p" && w="$w $p"
done
mount_rw /proc/sys && psys=rw || psys=ro
[ -n "$w" ] || [ "$psys" = rw ] && f=true || f=false
emit procfs.writable $f "/proc/sys mount: $psys; writable:${w:- none}" proc_sys_mount "$psys" writable "${w# }" \
    core_pattern "$(head -c 120 /proc/sys/kernel/core_pattern 2>/dev/null)"

# uevent_helper: the kernel runs it as root on the host at every uevent
mount_rw /sys && ssys=rw || ssys=ro
sw=; for p in /sys/kernel/uevent_helper; do writable "$p" && sw="$sw $p"; done
[ "$ssys" = rw ] || [ -n "$sw" ] && f=true || f=false
emit sysfs.writable $f "/sys mount: $ssys; writable:${sw:- none}" sys_mount "$ssys" writable "${sw# }"

# --- cgroups -------------------------------------------------------------------------------
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then cgv=2
elif grep -q '^[0-9]*:[^:]' /proc/self/cgroup 2>/dev/null; then cgv=1
else cgv=2; fi
v1_hier=$(awk '$2 != 0 && $4 == 1 { n++ } END { print n + 0 }' /proc/cgroups 2>/dev/null)
ra=; for p in $(find /sys/fs/cgroup -maxdepth 2 -name release_agent 2>/dev/null); do writable "$p" && ra="$ra $p"; done
da=; for p in /sys/fs/cgroup/devices/devices.allow /sys/fs/cgroup/devices.allow; do writable "$p" && da="$da $p"; done
# CVE-2022-0492 class: a process that may mount the cgroup v1 filesystem mounts a hierarchy
# (a named one needs no controller) and writes its release_agent. Tried: mount(2) of the
# cgroup filesystem, read-only, with an option the v1 parser rejects: EINVAL means seccomp,
# the capability check and the filesystem let the request through; nothing is mounted.
# (A root process without python3 makes the same call through busybox mount.)
mnt_class=$(raw 'mount(cgroup)')
case $mnt_class in
    not-tried:*) if [ "$EUID_" = 0 ] && [ -n "$BB" ] && [ -d "$TMP/mnt" ]; then
        mnt_class=$(try_child bb mount -t cgroup -o ro,azl_probe_invalid_option cgroup "$TMP/mnt")
    fi ;;
esac
case $mnt_class in
    reached:*) canmount="yes (mount(2) of the cgroup v1 filesystem: $mnt_class)" ;;
    not-tried:*) canmount="not tried ($mnt_class)" ;;
    *) canmount="no (mount(2) of the cgroup v1 filesystem: $mnt_class)" ;;
esac
case $canmount in
    yes*) f=true ;;
    not*) if [ -n "$ra$da" ]; then f=true; else f=null; fi ;;
    *) if [ -n "$ra$da" ]; then f=true; else f=false; fi ;;
esac
emit cgroup.escape $f "cgroup v$cgv (v1 hierarchies enabled: ${v1_hier:-0}); writable release_agent:${ra:- none}; writable devices.allow:${da:- none}; can mount a v1 hierarchy: $canmount" \
    version "$cgv" v1_hierarchies "${v1_hier:-0}" release_agent "${ra# }" devices_allow "${da# }" \
    can_mount_v1 "${canmount%% *}" mount "$mnt_class"

# --- devices -------------------------------------------------------------------------------
blk=$(find /dev -maxdepth 2 -type b 2>/dev/null | head -n 20 | tr '\n' ' '); blk=${blk% }
opened=
for d in $blk; do ( : <"$d" ) 2>/dev/null && opened="$opened $d"; done   # open O_RDONLY, no read
# the device cgroup (v1 devices.list of this process's cgroup; v2 keeps it in a BPF program
# that cannot be read from inside): which block devices a process here may open or create,
# whatever this uid's file permissions say (root, or a chmod-capable process, gets that far)
devlist=; devcg="unknown (cgroup v2: the device policy is a BPF program, not readable here)"
cgpath=$(sed -n 's/^[0-9]*:[^:]*devices[^:]*:\(.*\)$/\1/p' /proc/self/cgroup 2>/dev/null | head -n 1)
if [ -n "$cgpath" ]; then
    devcg="unknown (no devices.list found for $cgpath)"
    cgmount=$(printf '%s\n' "$MOUNTINFO" | awk '{ split($0, h, " - "); split(h[2], s, " ")
        if (s[1] == "cgroup" && ("," s[3] ",") ~ /,devices,/) { print $4 " " $5; exit } }')
    set -- $cgmount
    if [ $# -eq 2 ]; then
        case $cgpath in
            "$1"*) rel=${cgpath#"$1"}; [ "$1" = / ] && rel=$cgpath ;;
            *) rel=/ ;;  # the mount is this cgroup itself (a cgroup namespace root)
        esac
        for f in "$2${rel%/}/devices.list" "$2/devices.list"; do
            if [ -r "$f" ]; then devlist=$(tr '\n' ',' <"$f"); devcg="v1 $f: ${devlist%,}"; break; fi
        done
    fi
fi
cg_allows() {  # MAJOR MINOR [TYPE] -> the access (r, w, m) devices.list grants to M:m
    printf '%s\n' "$devlist" | tr ',' '\n' | awk -v M="$1" -v m="$2" -v t="${3:-b}" '
        { split($2, n, ":")
          if (($1 == "a" || $1 == t) && (n[1] == "*" || n[1] == M) && (n[2] == "*" || n[2] == m)) acc = acc $3 }
        END { out = ""; if (acc ~ /r/) out = out "r"; if (acc ~ /w/) out = out "w"; if (acc ~ /m/) out = out "m"; print out }'
}
allowed=; any_blk=
if [ -n "$devlist" ]; then
    for d in $blk; do
        set -- $(stat -c '%t %T' "$d" 2>/dev/null)
        [ $# -eq 2 ] || continue
        a=$(cg_allows $((0x$1)) $((0x$2)))
        case $a in *r* | *w*) allowed="$allowed $d($((0x$1)):$((0x$2)))=$a" ;; esac
    done
    any_blk=$(cg_allows '*' '*')
fi
if [ -n "$opened$allowed" ] || case $any_blk in *r* | *w*) true ;; *) false ;; esac; then f=true
elif [ -n "$devlist" ] || { [ -z "$blk" ] && ! has_cap mknod; }; then f=false
else f=null; fi  # the device cgroup's rules unreadable (as for dev.mem below)
emit dev.block $f "block devices visible: ${blk:-none}; openable read-only by uid $EUID_:${opened:- none}; device cgroup allows:${allowed:- none} (every block device: ${any_blk:-none}); device cgroup: $devcg" \
    visible "$blk" openable "${opened# }" cgroup_allows "${allowed# }" cgroup_any_block "$any_blk" \
    device_cgroup "$devcg"

# kernel memory and I/O ports: /dev/mem (c 1:1), /dev/kmem (c 1:2), /dev/port (c 1:4), under
# any name in /dev; opened read-only (never read) where present, and what the device cgroup
# grants on each, node or not: a root process with CAP_MKNOD makes the node it lacks
memvis=; memopen=; memcg=
# one stat for every char node (a host /dev has hundreds): "PATH MINOR" of major 1, minor 1/2/4
for d in $(find /dev -maxdepth 2 -type c -exec stat -c '%t %T %n' {} + 2>/dev/null \
        | awk '$1 == "1" && ($2 == "1" || $2 == "2" || $2 == "4") { print $3 ":" $2 }'); do
    memvis="$memvis ${d%:*}(1:${d##*:})"
    ( : <"${d%:*}" ) 2>/dev/null && memopen="$memopen ${d%:*}"
done
if [ -n "$devlist" ]; then
    for n in mem:1 kmem:2 port:4; do
        a=$(cg_allows 1 "${n#*:}" c)
        case $a in *r* | *w*) memcg="$memcg /dev/${n%:*}(1:${n#*:})=$a" ;; esac
    done
fi
# without readable rules (cgroup v2) a process that may create nodes (CAP_MKNOD) or sees one
# it cannot open is undecided: the rules it cannot read decide
if [ -n "$memopen$memcg" ]; then f=true
elif [ -n "$devlist" ] || { [ -z "$memvis" ] && ! has_cap mknod; }; then f=false
else f=null; fi
emit dev.mem $f "kernel memory / port devices visible:${memvis:- none}; openable read-only by uid $EUID_:${memopen:- none}; device cgroup allows:${memcg:- none}; device cgroup: $devcg" \
    visible "${memvis# }" openable "${memopen# }" cgroup_allows "${memcg# }" device_cgroup "$devcg"

if [ -n "$TMP" ]; then
    r=$(try_child bb mknod "$TMP/null" c 1 3); rm -f "$TMP/null"
    case $r in reached:ok) f=true ;; *) f=false ;; esac
    emit dev.mknod $f "mknod c 1:3 in the private temp dir: $r" result "$r"
else
    emit dev.mknod null "no writable temp dir for the mknod check"
fi

# --- kernel modules (an image of 64 zero bytes: the loader rejects it, nothing loads) -------
# Both loading syscalls, each on its own: a filter may block one and not the other.
mdis=$(cat /proc/sys/kernel/modules_disabled 2>/dev/null)
kr="init_module=$(raw init_module) finit_module=$(raw finit_module)"
f=$(tri $kr)
if [ "$f" = null ] && [ -n "$TMP" ] && \
        { [ -f "$TMP/m.ko" ] || head -c 64 /dev/zero >"$TMP/m.ko" 2>/dev/null; }; then
    # no raw syscalls: busybox insmod calls finit_module, then init_module, and reports the
    # last one: reached decides, blocked does not (finit_module's own answer is lost)
    b=$(try_child bb insmod "$TMP/m.ko")
    kr="$kr insmod(finit_module,init_module)=$b"
    case $b in reached:*) f=true ;; esac
fi
emit kmod $f "module loading with an invalid image (64 zero bytes, never loads): $kr; CAP_SYS_MODULE: $(has_cap sys_module && echo yes || echo no); modules_disabled=${mdis:-?}" \
    result "$kr" modules_disabled "$mdis"

# --- host processes --------------------------------------------------------------------------
# Any process of another mount namespace (a host process, with the host PID namespace)
# whose /proc/PID/root or memory this process may reach: the ns link is readable exactly
# when /proc/PID/root is (ptrace read access), /proc/PID/mem needs attach access.
yama=$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null)
root1=; env1=no
if $HOST_PID; then
    root1=$(readlink /proc/1/root 2>/dev/null)
    head -c 1 /proc/1/environ >/dev/null 2>&1 && env1=yes
fi
self_mnt=$(stat -L -c %i /proc/self/ns/mnt 2>/dev/null)
others=$(stat -L -c '%n %i' /proc/[0-9]*/ns/mnt 2>/dev/null | awk -v s="$self_mnt" '
    $2 != s { split($1, p, "/"); print p[3] }')
nproc=$(ls -d /proc/[0-9]* 2>/dev/null | wc -l)
nroot=0; nmem=0; shown=; listing=no
for p in $others; do
    nroot=$((nroot+1))
    if [ $nroot -le 50 ] && ( : </proc/$p/mem ) 2>/dev/null; then nmem=$((nmem+1)); fi
    if [ $nroot -le 5 ]; then
        shown="$shown $p:$(head -n 1 /proc/$p/comm 2>/dev/null)"
        [ $listing = no ] && ls /proc/$p/root/ >/dev/null 2>&1 && listing="yes (/proc/$p/root/)"
    fi
done
[ "$nroot" -gt 0 ] || [ -n "$root1" ] || [ $env1 = yes ] && f=true || f=false
emit ptrace.host $f "host PID namespace: $HOST_PID; processes of other mount namespaces whose /proc/PID/root is reachable: $nroot of $nproc visible${shown:+ (e.g.$shown)}; memory (/proc/PID/mem) openable: $nmem (of the first 50); their files listable: $listing; /proc/1/root: ${root1:-unreadable}; CAP_SYS_PTRACE: $(has_cap sys_ptrace && echo yes || echo no); yama ptrace_scope=${yama:-absent}" \
    reachable_root "$nroot" reachable_mem "$nmem" visible_processes "$nproc" examples "${shown# }" \
    files_listable "$listing" proc1_root "$root1" proc1_environ "$env1" ptrace_scope "$yama"

# --- kernel keyrings: every syscall that reaches them, each on its own ---------------------
# Keys are not namespaced by a container: one in the host user namespace shares its uid's
# keyrings with the host. keyctl(-1): EOPNOTSUPP, add_key(user, keyring 0): EINVAL,
# request_key(no such type): ENOKEY, when the call reached the keyring code.
kr="keyctl=$(raw keyctl) add_key=$(raw add_key) request_key=$(raw request_key)"
reached=$(printf '%s\n' $kr | sed -n 's/=reached:.*//p' | tr '\n' ' ')
reached=${reached% }
emit keyring.host "$(tri $kr)" "kernel keyring syscalls reachable: ${reached:-none}; results: $kr" \
    results "$kr" reached "${reached% }"

# --- sensitive syscalls, each in a child with invalid or no-op arguments --------------------
sc="unshare(CLONE_NEWNS)=$(try_child bb unshare -m true)"
sc="$sc setns(own-uts)=$(try_child bb nsenter -t $$ -u true)"
sc="$sc mount(cgroup)=$mnt_class"
if [ -d "$TMP/mnt" ]; then sc="$sc umount2(non-mountpoint)=$(try_child bb umount "$TMP/mnt")"
else sc="$sc umount2(non-mountpoint)=not-tried:no-tmpdir"; fi
if [ -n "$TMP" ] && : >"$TMP/sw" 2>/dev/null; then sc="$sc swapoff(non-swap-file)=$(try_child bb swapoff "$TMP/sw")"
else sc="$sc swapoff(non-swap-file)=not-tried:no-tmpdir"; fi
# ptrace and process_vm_readv are left out: the runtimes' default seccomp profiles allow them
# (kernel 4.8 on), so reaching them says nothing; ptrace.host tries what matters, attaching.
for n in bpf perf_event_open userfaultfd io_uring_setup; do
    sc="$sc $n=$(raw $n)"
done
reached=$(printf '%s\n' $sc | sed -n 's/=reached:.*//p' | tr '\n' ' ')
reached=${reached% }
emit syscalls.sensitive "$(tri $sc)" "reachable: ${reached:-none}; results: $sc" results "$sc" reached "${reached% }" \
    unprivileged_bpf_disabled "$(cat /proc/sys/kernel/unprivileged_bpf_disabled 2>/dev/null)" \
    perf_event_paranoid "$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null)"

# --- Kubernetes service account token (opened for reading, never read) ----------------------
tok=
for t in /var/run/secrets/kubernetes.io/serviceaccount/token /run/secrets/kubernetes.io/serviceaccount/token \
    /var/run/secrets/azure/tokens/azure-identity-token; do
    [ -f "$t" ] && ( : <"$t" ) 2>/dev/null && tok="$tok $t"
done
ns=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace 2>/dev/null | head -c 64)
[ -n "$tok" ] && f=true || f=false
emit sa.token $f "readable tokens:${tok:- none}" tokens "${tok# }" namespace "$ns" \
    api_host "${KUBERNETES_SERVICE_HOST:-}"

# --- sysctls and kernel --------------------------------------------------------------------
rl=
for p in /proc/sys/net/ipv4/conf/*/route_localnet; do
    [ -r "$p" ] && [ "$(cat "$p")" = 1 ] && { p=${p%/route_localnet}; rl="$rl ${p##*/}"; }
done
[ -n "$rl" ] && f=true || f=false
emit sysctl.localnet $f "route_localnet=1 on:${rl:- none}" interfaces "${rl# }"

emit kernel.cves null "kernel $(uname -r) ($(uname -m))" release "$(uname -r)" machine "$(uname -m)"

# --- collect the network checks --------------------------------------------------------------
if [ -n "$NET_OUT" ]; then
    wait
    cat "$NET_OUT.1" "$NET_OUT.2" "$NET_OUT.3" 2>/dev/null
else
    net_imds; net_wireserver; net_kubelet
fi

END_CS=$(uptime_cs)
emit probe.done null "probe finished" version "$PROBE_VERSION" \
    elapsed_ms "$(( (${END_CS:-0} - ${START_CS:-0}) * 10 ))" busybox "${BB:-none}" tmpdir "${TMP:-none}" \
    raw_syscalls "${RAW_HOW:-not-tried:$RAW_WHY}"
