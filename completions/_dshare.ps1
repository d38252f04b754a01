
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dshare' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dshare'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'dshare' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run a node: serve the box to this machine''s clients and to peers')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send a message to every node; prints its id once it is stored on disk')
            [CompletionResult]::new('log', 'log', [CompletionResultType]::ParameterValue, 'Print the conversation, oldest first')
            [CompletionResult]::new('peers', 'peers', [CompletionResultType]::ParameterValue, 'Show the known peers: up or down, last seen, round-trip time, in sync')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every line of a message box; exit 1 if anything was tampered with')
            [CompletionResult]::new('archive', 'archive', [CompletionResultType]::ParameterValue, 'Close the oldest messages of the box into an epoch file with a signed final head')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a command (cron job, CI step) and broadcast what happened: exit status, duration, host and the end of its output; exits with the command''s status')
            [CompletionResult]::new('spool', 'spool', [CompletionResultType]::ParameterValue, 'Show or deliver the requests that wait in the spool (sends that found no node)')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'One health verdict for a watchdog: node, box, peers, forks, disk space')
            [CompletionResult]::new('invite', 'invite', [CompletionResultType]::ParameterValue, 'Print a one-line invite that lets another machine join this network')
            [CompletionResult]::new('web', 'web', [CompletionResultType]::ParameterValue, 'Print this node''s page address, with its access token, for a browser')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Create a home: identity key, network key and client token')
            [CompletionResult]::new('id', 'id', [CompletionResultType]::ParameterValue, 'Print this node''s author id (its public key)')
            [CompletionResult]::new('client', 'client', [CompletionResultType]::ParameterValue, 'Issue, list and revoke client keys, for sending from machines that are not nodes')
            [CompletionResult]::new('keys', 'keys', [CompletionResultType]::ParameterValue, 'List, add, switch and retire network keys (rotation without downtime)')
            [CompletionResult]::new('testnet', 'testnet', [CompletionResultType]::ParameterValue, 'Start N nodes on loopback in temporary homes, joined into one network, until Ctrl-C: a real network for testing scripts')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dshare;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on (port 0 picks a free port; the real address is recorded in the home for the other commands)')
            [CompletionResult]::new('--io-timeout', '--io-timeout', [CompletionResultType]::ParameterName, 'Seconds a connection may stay silent (reading or writing) before it is closed')
            [CompletionResult]::new('--peer', '--peer', [CompletionResultType]::ParameterName, 'A peer to start from, as http://HOST:PORT (repeatable, or comma-separated; more are learned from it)')
            [CompletionResult]::new('--advertise', '--advertise', [CompletionResultType]::ParameterName, 'The address other nodes should use to reach this one [default: the listen address, unless it is a wildcard such as 0.0.0.0]')
            [CompletionResult]::new('--fanout', '--fanout', [CompletionResultType]::ParameterName, 'Peers each new message is pushed to at once when more are known; the rest get it from them')
            [CompletionResult]::new('--metrics-listen', '--metrics-listen', [CompletionResultType]::ParameterName, 'Also serve GET /metrics (Prometheus) on ADDR, without the client token: for a scrape network that only the monitoring host reaches. The main address serves /metrics too, with the token')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Most connections open at once (each has a thread); more are closed on arrival')
            [CompletionResult]::new('--head-timeout', '--head-timeout', [CompletionResultType]::ParameterName, 'Seconds a client has to send a whole request head once it has begun')
            [CompletionResult]::new('--allow-author', '--allow-author', [CompletionResultType]::ParameterName, 'Accept messages only from this author (repeatable; also read from <home>/authors.allow, one id per line). This node''s own author is always allowed')
            [CompletionResult]::new('--workers', '--workers', [CompletionResultType]::ParameterName, 'HTTP requests served at once (each on its connection''s thread); more wait for a turn')
            [CompletionResult]::new('--on-message', '--on-message', [CompletionResultType]::ParameterName, 'Run CMD (with `sh -c`) once for every new message this node stores, in arrival order, the message in DSHARE_* variables and its body on stdin. A cursor (default name `on-message`) makes it run once per message across restarts')
            [CompletionResult]::new('--cursor', '--cursor', [CompletionResultType]::ParameterName, 'Record the last message handled under NAME (in <home>/cursors/NAME), so that a restarted hook runs once for every message it missed, and never twice')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Where a new cursor starts: `now` (messages that arrive from now on), `start` (every message in the box) or a message ID or prefix (the messages after it) [default: now; `start` for `log --exec` without -f or --cursor]')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Times a failing hook (non-zero exit) is run again, after 1s, 2s, 4s…, before it counts as failed')
            [CompletionResult]::new('--author', '--author', [CompletionResultType]::ParameterName, 'Only messages from this author: an id or a prefix of one (repeatable)')
            [CompletionResult]::new('--grep', '--grep', [CompletionResultType]::ParameterName, 'Only messages whose body contains TEXT (plain substring, case-sensitive)')
            [CompletionResult]::new('--keep', '--keep', [CompletionResultType]::ParameterName, 'Close messages signed more than AGE ago (90d, 12h, 30s) into epochs, checked every AGE/8 (at least every second, at most daily)')
            [CompletionResult]::new('--keep-messages', '--keep-messages', [CompletionResultType]::ParameterName, 'Keep at most about N messages in the live box: close the rest into epochs (checked every minute, and once N/8 more arrived)')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--keep-going', '--keep-going', [CompletionResultType]::ParameterName, 'After the retries, report a failed hook and go on with the next message. Without it `log --exec` stops (exit 1) and the next run starts with that message, and `serve --on-message` tries it again every minute')
            [CompletionResult]::new('--prune-epochs', '--prune-epochs', [CompletionResultType]::ParameterName, 'Delete the lines of each epoch once closed, keeping its signed final head: the node then holds only the live box (and serves only that)')
            [CompletionResult]::new('--print-config', '--print-config', [CompletionResultType]::ParameterName, 'Print the settings serve would use, and where each comes from (flag, env, <home>/config.toml, default); then exit')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;send' {
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait until `all` peers that are up (at least one), or N of them, have stored the message')
            [CompletionResult]::new('--client', '--client', [CompletionResultType]::ParameterName, 'Send through a node with a client key line from `dshare client add` (sealed: nothing reusable crosses the wire). A line given here is visible to every local user in `ps`: prefer DSHARE_CLIENT or --client-file')
            [CompletionResult]::new('--client-file', '--client-file', [CompletionResultType]::ParameterName, 'Like --client, with the key line read from FILE (its first line that is not a `#` comment), so it never shows on a command line')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long --wait waits, e.g. 10s, 500ms, 2m')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'An idempotency key: the node stores one message for a repeat of this key by the same sender within 24 hours, and answers the first one''s id')
            [CompletionResult]::new('--spool', '--spool', [CompletionResultType]::ParameterName, 'The spool directory [default: <cache dir>/dshare/spool]')
            [CompletionResult]::new('--spool-limit', '--spool-limit', [CompletionResultType]::ParameterName, 'Largest the spool may grow; a request that would pass it is refused')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Talk to the node at URL instead of the one running on the home')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The node''s client token (default: the home''s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the node''s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;log' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Only the last N messages')
            [CompletionResult]::new('--lines', '--lines', [CompletionResultType]::ParameterName, 'Only the last N messages')
            [CompletionResult]::new('--exec', '--exec', [CompletionResultType]::ParameterName, 'Run CMD (with `sh -c`) once for each message instead of printing it, in the box''s arrival order: the message in DSHARE_* variables, its body on stdin')
            [CompletionResult]::new('--expect-from', '--expect-from', [CompletionResultType]::ParameterName, 'Check that AUTHOR (an id or prefix) sent a message within --within; exit 1, saying when it last did, if not')
            [CompletionResult]::new('--within', '--within', [CompletionResultType]::ParameterName, 'How recent --expect-from''s last message, or --expect-run''s last run, must be (by its timestamp), e.g. 90s, 15m, 26h')
            [CompletionResult]::new('--expect-run', '--expect-run', [CompletionResultType]::ParameterName, 'Check the runs of NAME (`dshare run --name NAME`): that the last one finished within --within, and the checks below; exit 1 with the reason if not')
            [CompletionResult]::new('--min-duration', '--min-duration', [CompletionResultType]::ParameterName, 'With --expect-run: the last run must have taken at least this long (a job that ends early did not do its work), e.g. 20m')
            [CompletionResult]::new('--max-runs', '--max-runs', [CompletionResultType]::ParameterName, 'With --expect-run and --per: at most N runs may have finished within --per')
            [CompletionResult]::new('--per', '--per', [CompletionResultType]::ParameterName, 'The span --max-runs counts over, e.g. 1h')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Talk to the node at URL instead of the one running on the home')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The node''s client token (default: the home''s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the node''s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line')
            [CompletionResult]::new('--author', '--author', [CompletionResultType]::ParameterName, 'Only messages from this author: an id or a prefix of one (repeatable)')
            [CompletionResult]::new('--grep', '--grep', [CompletionResultType]::ParameterName, 'Only messages whose body contains TEXT (plain substring, case-sensitive)')
            [CompletionResult]::new('--cursor', '--cursor', [CompletionResultType]::ParameterName, 'Record the last message handled under NAME (in <home>/cursors/NAME), so that a restarted hook runs once for every message it missed, and never twice')
            [CompletionResult]::new('--from', '--from', [CompletionResultType]::ParameterName, 'Where a new cursor starts: `now` (messages that arrive from now on), `start` (every message in the box) or a message ID or prefix (the messages after it) [default: now; `start` for `log --exec` without -f or --cursor]')
            [CompletionResult]::new('--retries', '--retries', [CompletionResultType]::ParameterName, 'Times a failing hook (non-zero exit) is run again, after 1s, 2s, 4s…, before it counts as failed')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Keep printing messages as they arrive')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'Keep printing messages as they arrive')
            [CompletionResult]::new('--success', '--success', [CompletionResultType]::ParameterName, 'With --expect-run: the last run must have succeeded (exit 0)')
            [CompletionResult]::new('--keep-going', '--keep-going', [CompletionResultType]::ParameterName, 'After the retries, report a failed hook and go on with the next message. Without it `log --exec` stops (exit 1) and the next run starts with that message, and `serve --on-message` tries it again every minute')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;peers' {
            [CompletionResult]::new('--expect-up', '--expect-up', [CompletionResultType]::ParameterName, 'Exit 1, naming the peers that are down, unless at least N peers are up (a watchdog for cron or CI)')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Talk to the node at URL instead of the one running on the home')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The node''s client token (default: the home''s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the node''s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;verify' {
            [CompletionResult]::new('--head', '--head', [CompletionResultType]::ParameterName, 'A chain hash printed earlier by `verify`: fail unless the box still contains it (catches lines cut from the end)')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Talk to the node at URL instead of the one running on the home')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The node''s client token (default: the home''s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the node''s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--peers', '--peers', [CompletionResultType]::ParameterName, 'Also compare this node''s digest with each peer''s: in sync, behind, ahead or diverged (exit 1 unless every peer that is up is in sync)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;archive' {
            [CompletionResult]::new('--before', '--before', [CompletionResultType]::ParameterName, 'Close every message signed before DATE: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (UTC), or an age such as 90d, 12h, 30s. Stops at the first line signed later')
            [CompletionResult]::new('--keep-messages', '--keep-messages', [CompletionResultType]::ParameterName, 'Close all but the last N messages')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Talk to the node at URL instead of the one running on the home')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The node''s client token (default: the home''s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the node''s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--prune', '--prune', [CompletionResultType]::ParameterName, 'Then delete the lines of every closed epoch, keeping their signed heads (verify then proves continuity from the heads; the messages are gone from this node)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;run' {
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'The job''s name in the report [default: the command''s file name]')
            [CompletionResult]::new('--tail', '--tail', [CompletionResultType]::ParameterName, 'Bytes of the end of the output (stdout and stderr together) to put in the report (at most 62k, to stay within the message size limit)')
            [CompletionResult]::new('--client', '--client', [CompletionResultType]::ParameterName, 'Send the reports through a node with a client key line from `dshare client add`')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long a report may take to reach the node before it goes to the spool')
            [CompletionResult]::new('--spool', '--spool', [CompletionResultType]::ParameterName, 'The spool directory [default: <cache dir>/dshare/spool]')
            [CompletionResult]::new('--spool-limit', '--spool-limit', [CompletionResultType]::ParameterName, 'Largest the spool may grow; a request that would pass it is refused')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Talk to the node at URL instead of the one running on the home')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The node''s client token (default: the home''s). A value given here is visible to every local user in `ps`: prefer DSHARE_TOKEN or --token-file')
            [CompletionResult]::new('--token-file', '--token-file', [CompletionResultType]::ParameterName, 'Read the node''s client token from FILE (its first line that is not a `#` comment), so it never shows on a command line')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--start', '--start', [CompletionResultType]::ParameterName, 'Also report when the command starts, with the same run id')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;spool' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the requests that wait, oldest first')
            [CompletionResult]::new('flush', 'flush', [CompletionResultType]::ParameterValue, 'Try to deliver the requests that wait (those due after their backoff, or all with --all); exit 1 if some are still waiting')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dshare;spool;list' {
            [CompletionResult]::new('--spool', '--spool', [CompletionResultType]::ParameterName, 'The spool directory [default: <cache dir>/dshare/spool]')
            [CompletionResult]::new('--spool-limit', '--spool-limit', [CompletionResultType]::ParameterName, 'Largest the spool may grow; a request that would pass it is refused')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;spool;flush' {
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long each delivery may take')
            [CompletionResult]::new('--spool', '--spool', [CompletionResultType]::ParameterName, 'The spool directory [default: <cache dir>/dshare/spool]')
            [CompletionResult]::new('--spool-limit', '--spool-limit', [CompletionResultType]::ParameterName, 'Largest the spool may grow; a request that would pass it is refused')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Try every request now, whatever its backoff')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;spool;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the requests that wait, oldest first')
            [CompletionResult]::new('flush', 'flush', [CompletionResultType]::ParameterValue, 'Try to deliver the requests that wait (those due after their backoff, or all with --all); exit 1 if some are still waiting')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dshare;spool;help;list' {
            break
        }
        'dshare;spool;help;flush' {
            break
        }
        'dshare;spool;help;help' {
            break
        }
        'dshare;doctor' {
            [CompletionResult]::new('--min-free', '--min-free', [CompletionResultType]::ParameterName, 'Unhealthy when less than this is free where the box lives (e.g. 64M, 1G)')
            [CompletionResult]::new('--max-behind', '--max-behind', [CompletionResultType]::ParameterName, 'Unhealthy when a peer holds more than N messages this node lacks')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for each answer of the node, e.g. 5s, 500ms')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;invite' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The address to put in the invite [default: the running node''s advertised address]')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;web' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;init' {
            [CompletionResult]::new('--join', '--join', [CompletionResultType]::ParameterName, 'Join the network of an invite printed by `dshare invite` instead of making a new one')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;id' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;client' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Issue a key for NAME and print its line for `dshare send --client` (DSHARE_CLIENT)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the clients by name and key id')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke NAME''s key; the running node refuses it within a second')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dshare;client;add' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The node address to put in the line [default: the running node''s advertised address]')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;client;list' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;client;revoke' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;client;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Issue a key for NAME and print its line for `dshare send --client` (DSHARE_CLIENT)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the clients by name and key id')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke NAME''s key; the running node refuses it within a second')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dshare;client;help;add' {
            break
        }
        'dshare;client;help;list' {
            break
        }
        'dshare;client;help;revoke' {
            break
        }
        'dshare;client;help;help' {
            break
        }
        'dshare;keys' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the network keys by id; the first one seals, all of them open')
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Create a new key, hold it beside the others, and print it (for `install` elsewhere)')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Hold another network key (64 hex digits) beside the others')
            [CompletionResult]::new('use', 'use', [CompletionResultType]::ParameterValue, 'Seal with this key from now on (by id from `list`, or the key itself)')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Stop holding a key (by id or key); the key in use cannot be removed')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dshare;keys;list' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;keys;new' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;keys;install' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;keys;use' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;keys;remove' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;keys;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the network keys by id; the first one seals, all of them open')
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Create a new key, hold it beside the others, and print it (for `install` elsewhere)')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Hold another network key (64 hex digits) beside the others')
            [CompletionResult]::new('use', 'use', [CompletionResultType]::ParameterValue, 'Seal with this key from now on (by id from `list`, or the key itself)')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Stop holding a key (by id or key); the key in use cannot be removed')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dshare;keys;help;list' {
            break
        }
        'dshare;keys;help;new' {
            break
        }
        'dshare;keys;help;install' {
            break
        }
        'dshare;keys;help;use' {
            break
        }
        'dshare;keys;help;remove' {
            break
        }
        'dshare;keys;help;help' {
            break
        }
        'dshare;testnet' {
            [CompletionResult]::new('--nodes', '--nodes', [CompletionResultType]::ParameterName, 'How many nodes to start')
            [CompletionResult]::new('--dir', '--dir', [CompletionResultType]::ParameterName, 'Put the homes in DIR (created if needed, kept at the end) instead of a temporary directory that is removed at the end')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'How diagnostics on stderr are written: text for people, or json (one object per line with ts, level, msg and fields such as peer) for log shippers')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success, and no notes on stderr (warnings and errors still print)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run a node: serve the box to this machine''s clients and to peers')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send a message to every node; prints its id once it is stored on disk')
            [CompletionResult]::new('log', 'log', [CompletionResultType]::ParameterValue, 'Print the conversation, oldest first')
            [CompletionResult]::new('peers', 'peers', [CompletionResultType]::ParameterValue, 'Show the known peers: up or down, last seen, round-trip time, in sync')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every line of a message box; exit 1 if anything was tampered with')
            [CompletionResult]::new('archive', 'archive', [CompletionResultType]::ParameterValue, 'Close the oldest messages of the box into an epoch file with a signed final head')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run a command (cron job, CI step) and broadcast what happened: exit status, duration, host and the end of its output; exits with the command''s status')
            [CompletionResult]::new('spool', 'spool', [CompletionResultType]::ParameterValue, 'Show or deliver the requests that wait in the spool (sends that found no node)')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'One health verdict for a watchdog: node, box, peers, forks, disk space')
            [CompletionResult]::new('invite', 'invite', [CompletionResultType]::ParameterValue, 'Print a one-line invite that lets another machine join this network')
            [CompletionResult]::new('web', 'web', [CompletionResultType]::ParameterValue, 'Print this node''s page address, with its access token, for a browser')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Create a home: identity key, network key and client token')
            [CompletionResult]::new('id', 'id', [CompletionResultType]::ParameterValue, 'Print this node''s author id (its public key)')
            [CompletionResult]::new('client', 'client', [CompletionResultType]::ParameterValue, 'Issue, list and revoke client keys, for sending from machines that are not nodes')
            [CompletionResult]::new('keys', 'keys', [CompletionResultType]::ParameterValue, 'List, add, switch and retire network keys (rotation without downtime)')
            [CompletionResult]::new('testnet', 'testnet', [CompletionResultType]::ParameterValue, 'Start N nodes on loopback in temporary homes, joined into one network, until Ctrl-C: a real network for testing scripts')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dshare;help;serve' {
            break
        }
        'dshare;help;send' {
            break
        }
        'dshare;help;log' {
            break
        }
        'dshare;help;peers' {
            break
        }
        'dshare;help;verify' {
            break
        }
        'dshare;help;archive' {
            break
        }
        'dshare;help;run' {
            break
        }
        'dshare;help;spool' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the requests that wait, oldest first')
            [CompletionResult]::new('flush', 'flush', [CompletionResultType]::ParameterValue, 'Try to deliver the requests that wait (those due after their backoff, or all with --all); exit 1 if some are still waiting')
            break
        }
        'dshare;help;spool;list' {
            break
        }
        'dshare;help;spool;flush' {
            break
        }
        'dshare;help;doctor' {
            break
        }
        'dshare;help;invite' {
            break
        }
        'dshare;help;web' {
            break
        }
        'dshare;help;init' {
            break
        }
        'dshare;help;id' {
            break
        }
        'dshare;help;client' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Issue a key for NAME and print its line for `dshare send --client` (DSHARE_CLIENT)')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the clients by name and key id')
            [CompletionResult]::new('revoke', 'revoke', [CompletionResultType]::ParameterValue, 'Revoke NAME''s key; the running node refuses it within a second')
            break
        }
        'dshare;help;client;add' {
            break
        }
        'dshare;help;client;list' {
            break
        }
        'dshare;help;client;revoke' {
            break
        }
        'dshare;help;keys' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the network keys by id; the first one seals, all of them open')
            [CompletionResult]::new('new', 'new', [CompletionResultType]::ParameterValue, 'Create a new key, hold it beside the others, and print it (for `install` elsewhere)')
            [CompletionResult]::new('install', 'install', [CompletionResultType]::ParameterValue, 'Hold another network key (64 hex digits) beside the others')
            [CompletionResult]::new('use', 'use', [CompletionResultType]::ParameterValue, 'Seal with this key from now on (by id from `list`, or the key itself)')
            [CompletionResult]::new('remove', 'remove', [CompletionResultType]::ParameterValue, 'Stop holding a key (by id or key); the key in use cannot be removed')
            break
        }
        'dshare;help;keys;list' {
            break
        }
        'dshare;help;keys;new' {
            break
        }
        'dshare;help;keys;install' {
            break
        }
        'dshare;help;keys;use' {
            break
        }
        'dshare;help;keys;remove' {
            break
        }
        'dshare;help;testnet' {
            break
        }
        'dshare;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
