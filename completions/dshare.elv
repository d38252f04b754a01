
use builtin;
use str;

set edit:completion:arg-completer[dshare] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'dshare'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'dshare'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run a node: serve the box to this machine''s clients and to peers'
            cand send 'Send a message to every node; prints its id once it is stored on disk'
            cand log 'Print the conversation, oldest first'
            cand peers 'Show the known peers: up or down, last seen, round-trip time, in sync'
            cand verify 'Check every line of a message box; exit 1 if anything was tampered with'
            cand archive 'Close the oldest messages of the box into an epoch file with a signed final head'
            cand run 'Run a command (cron job, CI step) and broadcast what happened: exit status, duration, host and the end of its output; exits with the command''s status'
            cand spool 'Show or deliver the requests that wait in the spool (sends that found no node)'
            cand doctor 'One health verdict for a watchdog: node, box, peers, forks, disk space'
            cand invite 'Print a one-line invite that lets another machine join this network'
            cand web 'Print this node''s page address, with its access token, for a browser'
            cand init 'Create a home: identity key, network key and client token'
            cand id 'Print this node''s author id (its public key)'
            cand client 'Issue, list and revoke client keys, for sending from machines that are not nodes'
            cand keys 'List, add, switch and retire network keys (rotation without downtime)'
            cand testnet 'Start N nodes on loopback in temporary homes, joined into one network, until Ctrl-C: a real network for testing scripts'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dshare;serve'= {
            cand --listen 'Address to listen on (port 0 picks a free port; the real address is recorded in the home for the other commands)'
            cand --io-timeout 'Seconds a connection may stay silent (reading or writing) before it is closed'
            cand --peer 'A peer to start from, as http://HOST:PORT (repeatable, or comma-separated; more are learned from it)'
            cand --advertise 'The address other nodes should use to reach this one [default: the listen address, unless it is a wildcard such as 0.0.0.0]'
            cand --fanout 'Peers each new message is pushed to at once when more are known; the rest get it from them'
            cand --metrics-listen 'Also serve GET /metrics (Prometheus) on ADDR, without the client token: for a scrape network that only the monitoring host reaches. The main address serves /metrics too, with the token'
            cand --max-connections 'Most connections open at once (each has a thread); more are closed on arrival'
            cand --head-timeout 'Seconds a client has to send a whole request head once it has begun'
            cand --allow-author 'Accept messages only from this author (repeatable; also read from <home>/authors.allow, one id per line). This node''s own author is always allowed'
            cand --workers 'HTTP requests served at once (each on its connection''s thread); more wait for a turn'
            cand --on-message 'Run CMD (with `sh -c`) once for every new message this node stores, in arrival order, the message in DSHARE_* variables and its body on stdin. A cursor (default name `on-message`) makes it run once per message across restarts'
            cand --cursor 'Record the last message handled under NAME (in <home>/cursors/NAME), so that a restarted hook runs once for every message it missed, and never twice'
            cand --from 'Where a new cursor starts: `now` (messages that arrive from now on), `start` (every message in the box) or a message ID or prefix (the messages after it) [default: now; `start` for `log --exec` without -f or --cursor]'
            cand --retries 'Times a failing hook (non-zero exit) is run again, after 1s, 2s, 4s…, before it counts as failed'
            cand --author 'Only messages from this author: an id or a prefix of one (repeatable)'
            cand --grep 'Only messages whose body contains TEXT (plain substring, case-sensitive)'
            cand --keep 'Close messages signed more than AGE ago (90d, 12h, 30s) into epochs, checked every AGE/8 (at least every second, at most daily)'
            cand --keep-messages 'Keep at most about N messages in the live box: close the rest into epochs (checked every minute, and once N/8 more arrived)'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --keep-going 'After the retries, report a failed hook and go on with the next message. Without it `log --exec` stops (exit 1) and the next run starts with that message, and `serve --on-message` tries it again every minute'
            cand --prune-epochs 'Delete the lines of each epoch once closed, keeping its signed final head: the node then holds only the live box (and serves only that)'
            cand --print-config 'Print the settings serve would use, and where each comes from (flag, env, <home>/config.toml, default); then exit'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;send'= {
            cand --wait 'Wait until `all` peers that are up (at least one), or N of them, have stored the message'
            cand --client 'Send through a node with a client key line from `dshare client add` (sealed: nothing reusable crosses the wire). A line given here is visible to every local user in `ps`: prefer DSHARE_CLIENT or --client-file'
            cand --client-file 'Like --client, with the key line read from FILE (its first line that is not a `#` comment), so it never shows on a command line'
            cand --timeout 'How long --wait waits, e.g. 10s, 500ms, 2m'
            cand --key 'An idempotency key: the node stores one message for a repeat of this key by the same sender within 24 hours, and answers the first one''s id'
            cand --spool 'The spool directory [default: <cache dir>/dshare/spool]'
            cand --spool-limit 'Largest the spool may grow; a request that would pass it is refused'
            cand --node 'Talk to the node at URL instead of the one running on the home'
            cand --token 'The node''s client token (default: the home''s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file'
            cand --token-file 'Read the node''s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;log'= {
            cand -n 'Only the last N messages'
            cand --lines 'Only the last N messages'
            cand --exec 'Run CMD (with `sh -c`) once for each message instead of printing it, in the box''s arrival order: the message in DSHARE_* variables, its body on stdin'
            cand --expect-from 'Check that AUTHOR (an id or prefix) sent a message within --within; exit 1, saying when it last did, if not'
            cand --within 'How recent --expect-from''s last message, or --expect-run''s last run, must be (by its timestamp), e.g. 90s, 15m, 26h'
            cand --expect-run 'Check the runs of NAME (`dshare run --name NAME`): that the last one finished within --within, and the checks below; exit 1 with the reason if not'
            cand --min-duration 'With --expect-run: the last run must have taken at least this long (a job that ends early did not do its work), e.g. 20m'
            cand --max-runs 'With --expect-run and --per: at most N runs may have finished within --per'
            cand --per 'The span --max-runs counts over, e.g. 1h'
            cand --node 'Talk to the node at URL instead of the one running on the home'
            cand --token 'The node''s client token (default: the home''s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file'
            cand --token-file 'Read the node''s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line'
            cand --author 'Only messages from this author: an id or a prefix of one (repeatable)'
            cand --grep 'Only messages whose body contains TEXT (plain substring, case-sensitive)'
            cand --cursor 'Record the last message handled under NAME (in <home>/cursors/NAME), so that a restarted hook runs once for every message it missed, and never twice'
            cand --from 'Where a new cursor starts: `now` (messages that arrive from now on), `start` (every message in the box) or a message ID or prefix (the messages after it) [default: now; `start` for `log --exec` without -f or --cursor]'
            cand --retries 'Times a failing hook (non-zero exit) is run again, after 1s, 2s, 4s…, before it counts as failed'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand -f 'Keep printing messages as they arrive'
            cand --follow 'Keep printing messages as they arrive'
            cand --success 'With --expect-run: the last run must have succeeded (exit 0)'
            cand --keep-going 'After the retries, report a failed hook and go on with the next message. Without it `log --exec` stops (exit 1) and the next run starts with that message, and `serve --on-message` tries it again every minute'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;peers'= {
            cand --expect-up 'Exit 1, naming the peers that are down, unless at least N peers are up (a watchdog for cron or CI)'
            cand --node 'Talk to the node at URL instead of the one running on the home'
            cand --token 'The node''s client token (default: the home''s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file'
            cand --token-file 'Read the node''s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;verify'= {
            cand --head 'A chain hash printed earlier by `verify`: fail unless the box still contains it (catches lines cut from the end)'
            cand --node 'Talk to the node at URL instead of the one running on the home'
            cand --token 'The node''s client token (default: the home''s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file'
            cand --token-file 'Read the node''s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --peers 'Also compare this node''s digest with each peer''s: in sync, behind, ahead or diverged (exit 1 unless every peer that is up is in sync)'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;archive'= {
            cand --before 'Close every message signed before DATE: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (UTC), or an age such as 90d, 12h, 30s. Stops at the first line signed later'
            cand --keep-messages 'Close all but the last N messages'
            cand --node 'Talk to the node at URL instead of the one running on the home'
            cand --token 'The node''s client token (default: the home''s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file'
            cand --token-file 'Read the node''s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --prune 'Then delete the lines of every closed epoch, keeping their signed heads (verify then proves continuity from the heads; the messages are gone from this node)'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;run'= {
            cand --name 'The job''s name in the report [default: the command''s file name]'
            cand --tail 'Bytes of the end of the output (stdout and stderr together) to put in the report (at most 62k, to stay within the message size limit)'
            cand --client 'Send the reports through a node with a client key line from `dshare client add`'
            cand --timeout 'How long a report may take to reach the node before it goes to the spool'
            cand --spool 'The spool directory [default: <cache dir>/dshare/spool]'
            cand --spool-limit 'Largest the spool may grow; a request that would pass it is refused'
            cand --node 'Talk to the node at URL instead of the one running on the home'
            cand --token 'The node''s client token (default: the home''s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file'
            cand --token-file 'Read the node''s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --start 'Also report when the command starts, with the same run id'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;spool'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List the requests that wait, oldest first'
            cand flush 'Try to deliver the requests that wait (those due after their backoff, or all with --all); exit 1 if some are still waiting'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dshare;spool;list'= {
            cand --spool 'The spool directory [default: <cache dir>/dshare/spool]'
            cand --spool-limit 'Largest the spool may grow; a request that would pass it is refused'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;spool;flush'= {
            cand --timeout 'How long each delivery may take'
            cand --spool 'The spool directory [default: <cache dir>/dshare/spool]'
            cand --spool-limit 'Largest the spool may grow; a request that would pass it is refused'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --all 'Try every request now, whatever its backoff'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;spool;help'= {
            cand list 'List the requests that wait, oldest first'
            cand flush 'Try to deliver the requests that wait (those due after their backoff, or all with --all); exit 1 if some are still waiting'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dshare;spool;help;list'= {
        }
        &'dshare;spool;help;flush'= {
        }
        &'dshare;spool;help;help'= {
        }
        &'dshare;doctor'= {
            cand --min-free 'Unhealthy when less than this is free where the box lives (e.g. 64M, 1G)'
            cand --max-behind 'Unhealthy when a peer holds more than N messages this node lacks'
            cand --timeout 'How long to wait for each answer of the node, e.g. 5s, 500ms'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;invite'= {
            cand --url 'The address to put in the invite [default: the running node''s advertised address]'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;web'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;init'= {
            cand --join 'Join the network of an invite printed by `dshare invite` instead of making a new one'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;id'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;client'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand add 'Issue a key for NAME and print its line for `dshare send --client` (DSHARE_CLIENT)'
            cand list 'List the clients by name and key id'
            cand revoke 'Revoke NAME''s key; the running node refuses it within a second'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dshare;client;add'= {
            cand --url 'The node address to put in the line [default: the running node''s advertised address]'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;client;list'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;client;revoke'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;client;help'= {
            cand add 'Issue a key for NAME and print its line for `dshare send --client` (DSHARE_CLIENT)'
            cand list 'List the clients by name and key id'
            cand revoke 'Revoke NAME''s key; the running node refuses it within a second'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dshare;client;help;add'= {
        }
        &'dshare;client;help;list'= {
        }
        &'dshare;client;help;revoke'= {
        }
        &'dshare;client;help;help'= {
        }
        &'dshare;keys'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand list 'List the network keys by id; the first one seals, all of them open'
            cand new 'Create a new key, hold it beside the others, and print it (for `install` elsewhere)'
            cand install 'Hold another network key (64 hex digits) beside the others'
            cand use 'Seal with this key from now on (by id from `list`, or the key itself)'
            cand remove 'Stop holding a key (by id or key); the key in use cannot be removed'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dshare;keys;list'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;keys;new'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;keys;install'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;keys;use'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;keys;remove'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;keys;help'= {
            cand list 'List the network keys by id; the first one seals, all of them open'
            cand new 'Create a new key, hold it beside the others, and print it (for `install` elsewhere)'
            cand install 'Hold another network key (64 hex digits) beside the others'
            cand use 'Seal with this key from now on (by id from `list`, or the key itself)'
            cand remove 'Stop holding a key (by id or key); the key in use cannot be removed'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dshare;keys;help;list'= {
        }
        &'dshare;keys;help;new'= {
        }
        &'dshare;keys;help;install'= {
        }
        &'dshare;keys;help;use'= {
        }
        &'dshare;keys;help;remove'= {
        }
        &'dshare;keys;help;help'= {
        }
        &'dshare;testnet'= {
            cand --nodes 'How many nodes to start'
            cand --dir 'Put the homes in DIR (created if needed, kept at the end) instead of a temporary directory that is removed at the end'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --log-format 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand --quiet 'Print nothing on success, and no notes on stderr (warnings and errors still print)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;help'= {
            cand serve 'Run a node: serve the box to this machine''s clients and to peers'
            cand send 'Send a message to every node; prints its id once it is stored on disk'
            cand log 'Print the conversation, oldest first'
            cand peers 'Show the known peers: up or down, last seen, round-trip time, in sync'
            cand verify 'Check every line of a message box; exit 1 if anything was tampered with'
            cand archive 'Close the oldest messages of the box into an epoch file with a signed final head'
            cand run 'Run a command (cron job, CI step) and broadcast what happened: exit status, duration, host and the end of its output; exits with the command''s status'
            cand spool 'Show or deliver the requests that wait in the spool (sends that found no node)'
            cand doctor 'One health verdict for a watchdog: node, box, peers, forks, disk space'
            cand invite 'Print a one-line invite that lets another machine join this network'
            cand web 'Print this node''s page address, with its access token, for a browser'
            cand init 'Create a home: identity key, network key and client token'
            cand id 'Print this node''s author id (its public key)'
            cand client 'Issue, list and revoke client keys, for sending from machines that are not nodes'
            cand keys 'List, add, switch and retire network keys (rotation without downtime)'
            cand testnet 'Start N nodes on loopback in temporary homes, joined into one network, until Ctrl-C: a real network for testing scripts'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dshare;help;serve'= {
        }
        &'dshare;help;send'= {
        }
        &'dshare;help;log'= {
        }
        &'dshare;help;peers'= {
        }
        &'dshare;help;verify'= {
        }
        &'dshare;help;archive'= {
        }
        &'dshare;help;run'= {
        }
        &'dshare;help;spool'= {
            cand list 'List the requests that wait, oldest first'
            cand flush 'Try to deliver the requests that wait (those due after their backoff, or all with --all); exit 1 if some are still waiting'
        }
        &'dshare;help;spool;list'= {
        }
        &'dshare;help;spool;flush'= {
        }
        &'dshare;help;doctor'= {
        }
        &'dshare;help;invite'= {
        }
        &'dshare;help;web'= {
        }
        &'dshare;help;init'= {
        }
        &'dshare;help;id'= {
        }
        &'dshare;help;client'= {
            cand add 'Issue a key for NAME and print its line for `dshare send --client` (DSHARE_CLIENT)'
            cand list 'List the clients by name and key id'
            cand revoke 'Revoke NAME''s key; the running node refuses it within a second'
        }
        &'dshare;help;client;add'= {
        }
        &'dshare;help;client;list'= {
        }
        &'dshare;help;client;revoke'= {
        }
        &'dshare;help;keys'= {
            cand list 'List the network keys by id; the first one seals, all of them open'
            cand new 'Create a new key, hold it beside the others, and print it (for `install` elsewhere)'
            cand install 'Hold another network key (64 hex digits) beside the others'
            cand use 'Seal with this key from now on (by id from `list`, or the key itself)'
            cand remove 'Stop holding a key (by id or key); the key in use cannot be removed'
        }
        &'dshare;help;keys;list'= {
        }
        &'dshare;help;keys;new'= {
        }
        &'dshare;help;keys;install'= {
        }
        &'dshare;help;keys;use'= {
        }
        &'dshare;help;keys;remove'= {
        }
        &'dshare;help;testnet'= {
        }
        &'dshare;help;help'= {
        }
    ]
    $completions[$command]
}
