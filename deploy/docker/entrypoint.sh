#!/bin/sh
# meterwatch image entry point: the first argument chooses the service.
#   worker [args]     a stream worker; --instance defaults to $WORKER_INSTANCE or the
#                     host name (a compose replica's container id, a StatefulSet pod's
#                     name), so every replica has its own RocksDB directory and client id
#   api | notifier    the Ops API / the notifier
#   any other meterwatch command (token, simulate, bootstrap, backtest, ...) runs as is;
#   an absolute path or a shell (sh, bash) runs that program instead.
set -eu
cmd="${1:-api}"
[ $# -gt 0 ] && shift
case "$cmd" in
  worker)
    case " $* " in
      *" --instance "*|*" --instance="*) ;;
      *) set -- --instance "${WORKER_INSTANCE:-$(hostname)}" "$@" ;;
    esac
    exec meterwatch worker "$@"
    ;;
  /*|sh|bash|python|python3)
    exec "$cmd" "$@"
    ;;
  *)
    exec meterwatch "$cmd" "$@"
    ;;
esac
