# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_dshare_global_optspecs
    string join \n home= json q/quiet log-format= h/help V/version
end

function __fish_dshare_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_dshare_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_dshare_using_subcommand
    set -l cmd (__fish_dshare_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c dshare -n "__fish_dshare_needs_command" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_needs_command" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_needs_command" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_needs_command" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_needs_command" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_needs_command" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "serve" -d 'Run a node: serve the box to this machine\'s clients and to peers'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "send" -d 'Send a message to every node; prints its id once it is stored on disk'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "log" -d 'Print the conversation, oldest first'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "peers" -d 'Show the known peers: up or down, last seen, round-trip time, in sync'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "verify" -d 'Check every line of a message box; exit 1 if anything was tampered with'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "archive" -d 'Close the oldest messages of the box into an epoch file with a signed final head'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "run" -d 'Run a command (cron job, CI step) and broadcast what happened: exit status, duration, host and the end of its output; exits with the command\'s status'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "spool" -d 'Show or deliver the requests that wait in the spool (sends that found no node)'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "doctor" -d 'One health verdict for a watchdog: node, box, peers, forks, disk space'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "invite" -d 'Print a one-line invite that lets another machine join this network'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "web" -d 'Print this node\'s page address, with its access token, for a browser'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "init" -d 'Create a home: identity key, network key and client token'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "id" -d 'Print this node\'s author id (its public key)'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "client" -d 'Issue, list and revoke client keys, for sending from machines that are not nodes'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "keys" -d 'List, add, switch and retire network keys (rotation without downtime)'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "testnet" -d 'Start N nodes on loopback in temporary homes, joined into one network, until Ctrl-C: a real network for testing scripts'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l listen -d 'Address to listen on (port 0 picks a free port; the real address is recorded in the home for the other commands)' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l io-timeout -d 'Seconds a connection may stay silent (reading or writing) before it is closed' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l peer -d 'A peer to start from, as http://HOST:PORT (repeatable, or comma-separated; more are learned from it)' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l advertise -d 'The address other nodes should use to reach this one [default: the listen address, unless it is a wildcard such as 0.0.0.0]' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l fanout -d 'Peers each new message is pushed to at once when more are known; the rest get it from them' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l metrics-listen -d 'Also serve GET /metrics (Prometheus) on ADDR, without the client token: for a scrape network that only the monitoring host reaches. The main address serves /metrics too, with the token' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l max-connections -d 'Most connections open at once (each has a thread); more are closed on arrival' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l head-timeout -d 'Seconds a client has to send a whole request head once it has begun' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l allow-author -d 'Accept messages only from this author (repeatable; also read from <home>/authors.allow, one id per line). This node\'s own author is always allowed' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l workers -d 'HTTP requests served at once (each on its connection\'s thread); more wait for a turn' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l on-message -d 'Run CMD (with `sh -c`) once for every new message this node stores, in arrival order, the message in DSHARE_* variables and its body on stdin. A cursor (default name `on-message`) makes it run once per message across restarts' -r -f -a "(__fish_complete_command)"
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l cursor -d 'Record the last message handled under NAME (in <home>/cursors/NAME), so that a restarted hook runs once for every message it missed, and never twice' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l from -d 'Where a new cursor starts: `now` (messages that arrive from now on), `start` (every message in the box) or a message ID or prefix (the messages after it) [default: now; `start` for `log --exec` without -f or --cursor]' -r -f -a "now\t''
start\t''"
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l retries -d 'Times a failing hook (non-zero exit) is run again, after 1s, 2s, 4s…, before it counts as failed' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l author -d 'Only messages from this author: an id or a prefix of one (repeatable)' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l grep -d 'Only messages whose body contains TEXT (plain substring, case-sensitive)' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l keep -d 'Close messages signed more than AGE ago (90d, 12h, 30s) into epochs, checked every AGE/8 (at least every second, at most daily)' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l keep-messages -d 'Keep at most about N messages in the live box: close the rest into epochs (checked every minute, and once N/8 more arrived)' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l keep-going -d 'After the retries, report a failed hook and go on with the next message. Without it `log --exec` stops (exit 1) and the next run starts with that message, and `serve --on-message` tries it again every minute'
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l prune-epochs -d 'Delete the lines of each epoch once closed, keeping its signed final head: the node then holds only the live box (and serves only that)'
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l print-config -d 'Print the settings serve would use, and where each comes from (flag, env, <home>/config.toml, default); then exit'
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand serve" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand serve" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand serve" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand send" -l wait -d 'Wait until `all` peers that are up (at least one), or N of them, have stored the message' -r -f -a "all\t''"
complete -c dshare -n "__fish_dshare_using_subcommand send" -l client -d 'Send through a node with a client key line from `dshare client add` (sealed: nothing reusable crosses the wire). A line given here is visible to every local user in `ps`: prefer DSHARE_CLIENT or --client-file' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand send" -l client-file -d 'Like --client, with the key line read from FILE (its first line that is not a `#` comment), so it never shows on a command line' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand send" -l timeout -d 'How long --wait waits, e.g. 10s, 500ms, 2m' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand send" -l key -d 'An idempotency key: the node stores one message for a repeat of this key by the same sender within 24 hours, and answers the first one\'s id' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand send" -l spool -d 'The spool directory [default: <cache dir>/dshare/spool]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand send" -l spool-limit -d 'Largest the spool may grow; a request that would pass it is refused' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand send" -l node -d 'Talk to the node at URL instead of the one running on the home' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand send" -l token -d 'The node\'s client token (default: the home\'s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand send" -l token-file -d 'Read the node\'s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand send" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand send" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand send" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand send" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand send" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand send" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand log" -s n -l lines -d 'Only the last N messages' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l exec -d 'Run CMD (with `sh -c`) once for each message instead of printing it, in the box\'s arrival order: the message in DSHARE_* variables, its body on stdin' -r -f -a "(__fish_complete_command)"
complete -c dshare -n "__fish_dshare_using_subcommand log" -l expect-from -d 'Check that AUTHOR (an id or prefix) sent a message within --within; exit 1, saying when it last did, if not' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l within -d 'How recent --expect-from\'s last message, or --expect-run\'s last run, must be (by its timestamp), e.g. 90s, 15m, 26h' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l expect-run -d 'Check the runs of NAME (`dshare run --name NAME`): that the last one finished within --within, and the checks below; exit 1 with the reason if not' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l min-duration -d 'With --expect-run: the last run must have taken at least this long (a job that ends early did not do its work), e.g. 20m' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l max-runs -d 'With --expect-run and --per: at most N runs may have finished within --per' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l per -d 'The span --max-runs counts over, e.g. 1h' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l node -d 'Talk to the node at URL instead of the one running on the home' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l token -d 'The node\'s client token (default: the home\'s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l token-file -d 'Read the node\'s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand log" -l author -d 'Only messages from this author: an id or a prefix of one (repeatable)' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l grep -d 'Only messages whose body contains TEXT (plain substring, case-sensitive)' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l cursor -d 'Record the last message handled under NAME (in <home>/cursors/NAME), so that a restarted hook runs once for every message it missed, and never twice' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l from -d 'Where a new cursor starts: `now` (messages that arrive from now on), `start` (every message in the box) or a message ID or prefix (the messages after it) [default: now; `start` for `log --exec` without -f or --cursor]' -r -f -a "now\t''
start\t''"
complete -c dshare -n "__fish_dshare_using_subcommand log" -l retries -d 'Times a failing hook (non-zero exit) is run again, after 1s, 2s, 4s…, before it counts as failed' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand log" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand log" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand log" -s f -l follow -d 'Keep printing messages as they arrive'
complete -c dshare -n "__fish_dshare_using_subcommand log" -l success -d 'With --expect-run: the last run must have succeeded (exit 0)'
complete -c dshare -n "__fish_dshare_using_subcommand log" -l keep-going -d 'After the retries, report a failed hook and go on with the next message. Without it `log --exec` stops (exit 1) and the next run starts with that message, and `serve --on-message` tries it again every minute'
complete -c dshare -n "__fish_dshare_using_subcommand log" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand log" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand log" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand log" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand peers" -l expect-up -d 'Exit 1, naming the peers that are down, unless at least N peers are up (a watchdog for cron or CI)' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand peers" -l node -d 'Talk to the node at URL instead of the one running on the home' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand peers" -l token -d 'The node\'s client token (default: the home\'s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand peers" -l token-file -d 'Read the node\'s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand peers" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand peers" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand peers" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand peers" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand peers" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand peers" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l head -d 'A chain hash printed earlier by `verify`: fail unless the box still contains it (catches lines cut from the end)' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l node -d 'Talk to the node at URL instead of the one running on the home' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l token -d 'The node\'s client token (default: the home\'s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l token-file -d 'Read the node\'s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l peers -d 'Also compare this node\'s digest with each peer\'s: in sync, behind, ahead or diverged (exit 1 unless every peer that is up is in sync)'
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand verify" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand verify" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand verify" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand archive" -l before -d 'Close every message signed before DATE: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (UTC), or an age such as 90d, 12h, 30s. Stops at the first line signed later' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand archive" -l keep-messages -d 'Close all but the last N messages' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand archive" -l node -d 'Talk to the node at URL instead of the one running on the home' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand archive" -l token -d 'The node\'s client token (default: the home\'s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand archive" -l token-file -d 'Read the node\'s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand archive" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand archive" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand archive" -l prune -d 'Then delete the lines of every closed epoch, keeping their signed heads (verify then proves continuity from the heads; the messages are gone from this node)'
complete -c dshare -n "__fish_dshare_using_subcommand archive" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand archive" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand archive" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dshare -n "__fish_dshare_using_subcommand archive" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand run" -l name -d 'The job\'s name in the report [default: the command\'s file name]' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand run" -l tail -d 'Bytes of the end of the output (stdout and stderr together) to put in the report (at most 62k, to stay within the message size limit)' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand run" -l client -d 'Send the reports through a node with a client key line from `dshare client add`' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand run" -l timeout -d 'How long a report may take to reach the node before it goes to the spool' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand run" -l spool -d 'The spool directory [default: <cache dir>/dshare/spool]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand run" -l spool-limit -d 'Largest the spool may grow; a request that would pass it is refused' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand run" -l node -d 'Talk to the node at URL instead of the one running on the home' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand run" -l token -d 'The node\'s client token (default: the home\'s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand run" -l token-file -d 'Read the node\'s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand run" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand run" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand run" -l start -d 'Also report when the command starts, with the same run id'
complete -c dshare -n "__fish_dshare_using_subcommand run" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand run" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dshare -n "__fish_dshare_using_subcommand run" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and not __fish_seen_subcommand_from list flush help" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand spool; and not __fish_seen_subcommand_from list flush help" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand spool; and not __fish_seen_subcommand_from list flush help" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and not __fish_seen_subcommand_from list flush help" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and not __fish_seen_subcommand_from list flush help" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and not __fish_seen_subcommand_from list flush help" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and not __fish_seen_subcommand_from list flush help" -f -a "list" -d 'List the requests that wait, oldest first'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and not __fish_seen_subcommand_from list flush help" -f -a "flush" -d 'Try to deliver the requests that wait (those due after their backoff, or all with --all); exit 1 if some are still waiting'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and not __fish_seen_subcommand_from list flush help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from list" -l spool -d 'The spool directory [default: <cache dir>/dshare/spool]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from list" -l spool-limit -d 'Largest the spool may grow; a request that would pass it is refused' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from list" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from list" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from list" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from flush" -l timeout -d 'How long each delivery may take' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from flush" -l spool -d 'The spool directory [default: <cache dir>/dshare/spool]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from flush" -l spool-limit -d 'Largest the spool may grow; a request that would pass it is refused' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from flush" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from flush" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from flush" -l all -d 'Try every request now, whatever its backoff'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from flush" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from flush" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from flush" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from flush" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the requests that wait, oldest first'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from help" -f -a "flush" -d 'Try to deliver the requests that wait (those due after their backoff, or all with --all); exit 1 if some are still waiting'
complete -c dshare -n "__fish_dshare_using_subcommand spool; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -l min-free -d 'Unhealthy when less than this is free where the box lives (e.g. 64M, 1G)' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -l max-behind -d 'Unhealthy when a peer holds more than N messages this node lacks' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -l timeout -d 'How long to wait for each answer of the node, e.g. 5s, 500ms' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand invite" -l url -d 'The address to put in the invite [default: the running node\'s advertised address]' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand invite" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand invite" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand invite" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand invite" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand invite" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand invite" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand web" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand web" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand web" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand web" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand web" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand web" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand init" -l join -d 'Join the network of an invite printed by `dshare invite` instead of making a new one' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand init" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand init" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand init" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand init" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand init" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand init" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand id" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand id" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand id" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand id" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand id" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand id" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand client; and not __fish_seen_subcommand_from add list revoke help" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand client; and not __fish_seen_subcommand_from add list revoke help" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand client; and not __fish_seen_subcommand_from add list revoke help" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand client; and not __fish_seen_subcommand_from add list revoke help" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand client; and not __fish_seen_subcommand_from add list revoke help" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand client; and not __fish_seen_subcommand_from add list revoke help" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand client; and not __fish_seen_subcommand_from add list revoke help" -f -a "add" -d 'Issue a key for NAME and print its line for `dshare send --client` (DSHARE_CLIENT)'
complete -c dshare -n "__fish_dshare_using_subcommand client; and not __fish_seen_subcommand_from add list revoke help" -f -a "list" -d 'List the clients by name and key id'
complete -c dshare -n "__fish_dshare_using_subcommand client; and not __fish_seen_subcommand_from add list revoke help" -f -a "revoke" -d 'Revoke NAME\'s key; the running node refuses it within a second'
complete -c dshare -n "__fish_dshare_using_subcommand client; and not __fish_seen_subcommand_from add list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from add" -l url -d 'The node address to put in the line [default: the running node\'s advertised address]' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from add" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from add" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from add" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from add" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from list" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from list" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from list" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from revoke" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from revoke" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from revoke" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from revoke" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from revoke" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from help" -f -a "add" -d 'Issue a key for NAME and print its line for `dshare send --client` (DSHARE_CLIENT)'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the clients by name and key id'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke NAME\'s key; the running node refuses it within a second'
complete -c dshare -n "__fish_dshare_using_subcommand client; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and not __fish_seen_subcommand_from list new install use remove help" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand keys; and not __fish_seen_subcommand_from list new install use remove help" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand keys; and not __fish_seen_subcommand_from list new install use remove help" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and not __fish_seen_subcommand_from list new install use remove help" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and not __fish_seen_subcommand_from list new install use remove help" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and not __fish_seen_subcommand_from list new install use remove help" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and not __fish_seen_subcommand_from list new install use remove help" -f -a "list" -d 'List the network keys by id; the first one seals, all of them open'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and not __fish_seen_subcommand_from list new install use remove help" -f -a "new" -d 'Create a new key, hold it beside the others, and print it (for `install` elsewhere)'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and not __fish_seen_subcommand_from list new install use remove help" -f -a "install" -d 'Hold another network key (64 hex digits) beside the others'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and not __fish_seen_subcommand_from list new install use remove help" -f -a "use" -d 'Seal with this key from now on (by id from `list`, or the key itself)'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and not __fish_seen_subcommand_from list new install use remove help" -f -a "remove" -d 'Stop holding a key (by id or key); the key in use cannot be removed'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and not __fish_seen_subcommand_from list new install use remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from list" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from list" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from list" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from new" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from new" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from new" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from new" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from new" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from new" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from install" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from install" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from install" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from use" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from use" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from use" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from use" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from use" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from use" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from remove" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from remove" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from remove" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from remove" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the network keys by id; the first one seals, all of them open'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "new" -d 'Create a new key, hold it beside the others, and print it (for `install` elsewhere)'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "install" -d 'Hold another network key (64 hex digits) beside the others'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "use" -d 'Seal with this key from now on (by id from `list`, or the key itself)'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Stop holding a key (by id or key); the key in use cannot be removed'
complete -c dshare -n "__fish_dshare_using_subcommand keys; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dshare -n "__fish_dshare_using_subcommand testnet" -l nodes -d 'How many nodes to start' -r -f
complete -c dshare -n "__fish_dshare_using_subcommand testnet" -l dir -d 'Put the homes in DIR (created if needed, kept at the end) instead of a temporary directory that is removed at the end' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand testnet" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand testnet" -l log-format -d 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers' -r -f -a "text\t''
json\t''"
complete -c dshare -n "__fish_dshare_using_subcommand testnet" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand testnet" -s q -l quiet -d 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
complete -c dshare -n "__fish_dshare_using_subcommand testnet" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand testnet" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "serve" -d 'Run a node: serve the box to this machine\'s clients and to peers'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "send" -d 'Send a message to every node; prints its id once it is stored on disk'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "log" -d 'Print the conversation, oldest first'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "peers" -d 'Show the known peers: up or down, last seen, round-trip time, in sync'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "verify" -d 'Check every line of a message box; exit 1 if anything was tampered with'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "archive" -d 'Close the oldest messages of the box into an epoch file with a signed final head'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "run" -d 'Run a command (cron job, CI step) and broadcast what happened: exit status, duration, host and the end of its output; exits with the command\'s status'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "spool" -d 'Show or deliver the requests that wait in the spool (sends that found no node)'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "doctor" -d 'One health verdict for a watchdog: node, box, peers, forks, disk space'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "invite" -d 'Print a one-line invite that lets another machine join this network'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "web" -d 'Print this node\'s page address, with its access token, for a browser'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "init" -d 'Create a home: identity key, network key and client token'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "id" -d 'Print this node\'s author id (its public key)'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "client" -d 'Issue, list and revoke client keys, for sending from machines that are not nodes'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "keys" -d 'List, add, switch and retire network keys (rotation without downtime)'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "testnet" -d 'Start N nodes on loopback in temporary homes, joined into one network, until Ctrl-C: a real network for testing scripts'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify archive run spool doctor invite web init id client keys testnet help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dshare -n "__fish_dshare_using_subcommand help; and __fish_seen_subcommand_from spool" -f -a "list" -d 'List the requests that wait, oldest first'
complete -c dshare -n "__fish_dshare_using_subcommand help; and __fish_seen_subcommand_from spool" -f -a "flush" -d 'Try to deliver the requests that wait (those due after their backoff, or all with --all); exit 1 if some are still waiting'
complete -c dshare -n "__fish_dshare_using_subcommand help; and __fish_seen_subcommand_from client" -f -a "add" -d 'Issue a key for NAME and print its line for `dshare send --client` (DSHARE_CLIENT)'
complete -c dshare -n "__fish_dshare_using_subcommand help; and __fish_seen_subcommand_from client" -f -a "list" -d 'List the clients by name and key id'
complete -c dshare -n "__fish_dshare_using_subcommand help; and __fish_seen_subcommand_from client" -f -a "revoke" -d 'Revoke NAME\'s key; the running node refuses it within a second'
complete -c dshare -n "__fish_dshare_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "list" -d 'List the network keys by id; the first one seals, all of them open'
complete -c dshare -n "__fish_dshare_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "new" -d 'Create a new key, hold it beside the others, and print it (for `install` elsewhere)'
complete -c dshare -n "__fish_dshare_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "install" -d 'Hold another network key (64 hex digits) beside the others'
complete -c dshare -n "__fish_dshare_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "use" -d 'Seal with this key from now on (by id from `list`, or the key itself)'
complete -c dshare -n "__fish_dshare_using_subcommand help; and __fish_seen_subcommand_from keys" -f -a "remove" -d 'Stop holding a key (by id or key); the key in use cannot be removed'
