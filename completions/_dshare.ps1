
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
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run a node: serve the box to this machine''s clients and to peers')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send a message to every node; prints its id once it is stored on disk')
            [CompletionResult]::new('log', 'log', [CompletionResultType]::ParameterValue, 'Print the conversation, oldest first')
            [CompletionResult]::new('peers', 'peers', [CompletionResultType]::ParameterValue, 'Show the known peers: up or down, last seen, round-trip time, in sync')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check every line of a message box; exit 1 if anything was tampered with')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'One health verdict for a watchdog: node, box, peers, forks, disk space')
            [CompletionResult]::new('invite', 'invite', [CompletionResultType]::ParameterValue, 'Print a one-line invite that lets another machine join this network')
            [CompletionResult]::new('web', 'web', [CompletionResultType]::ParameterValue, 'Print this node''s page address, with its access token, for a browser')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Create a home: identity key, network key and client token')
            [CompletionResult]::new('id', 'id', [CompletionResultType]::ParameterValue, 'Print this node''s author id (its public key)')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write man pages and shell completions (for packagers)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dshare;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on (port 0 picks a free port; the real address is recorded in the home for the other commands)')
            [CompletionResult]::new('--io-timeout', '--io-timeout', [CompletionResultType]::ParameterName, 'Seconds a connection may stay silent (reading or writing) before it is closed')
            [CompletionResult]::new('--peer', '--peer', [CompletionResultType]::ParameterName, 'A peer to start from, as http://HOST:PORT (repeatable; more are learned from it)')
            [CompletionResult]::new('--advertise', '--advertise', [CompletionResultType]::ParameterName, 'The address other nodes should use to reach this one [default: the listen address, unless it is a wildcard such as 0.0.0.0]')
            [CompletionResult]::new('--fanout', '--fanout', [CompletionResultType]::ParameterName, 'Peers each new message is pushed to at once when more are known; the rest get it from them')
            [CompletionResult]::new('--workers', '--workers', [CompletionResultType]::ParameterName, 'Worker threads answering HTTP requests')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;send' {
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait until `all` peers that are up, or N of them, have stored the message')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long --wait waits, e.g. 10s, 500ms, 2m')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Talk to the node at URL instead of the one running on the home')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The node''s client token (default: the home''s)')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;log' {
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Only the last N messages')
            [CompletionResult]::new('--lines', '--lines', [CompletionResultType]::ParameterName, 'Only the last N messages')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Talk to the node at URL instead of the one running on the home')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The node''s client token (default: the home''s)')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Keep printing messages as they arrive')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'Keep printing messages as they arrive')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;peers' {
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Talk to the node at URL instead of the one running on the home')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The node''s client token (default: the home''s)')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;verify' {
            [CompletionResult]::new('--head', '--head', [CompletionResultType]::ParameterName, 'A chain hash printed earlier by `verify`: fail unless the box still contains it (catches lines cut from the end)')
            [CompletionResult]::new('--node', '--node', [CompletionResultType]::ParameterName, 'Talk to the node at URL instead of the one running on the home')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'The node''s client token (default: the home''s)')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--peers', '--peers', [CompletionResultType]::ParameterName, 'Also compare this node''s digest with each peer''s: in sync, behind, ahead or diverged (exit 1 unless every peer that is up is in sync)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;doctor' {
            [CompletionResult]::new('--min-free', '--min-free', [CompletionResultType]::ParameterName, 'Unhealthy when less than this is free where the box lives (e.g. 64M, 1G)')
            [CompletionResult]::new('--max-behind', '--max-behind', [CompletionResultType]::ParameterName, 'Unhealthy when a peer holds more than N messages this node lacks')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for each answer of the node, e.g. 5s, 500ms')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;invite' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The address to put in the invite [default: the running node''s advertised address]')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;web' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;init' {
            [CompletionResult]::new('--join', '--join', [CompletionResultType]::ParameterName, 'Join the network of an invite printed by `dshare invite` instead of making a new one')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;id' {
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dshare;generate' {
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Directory that receives man/ and completions/')
            [CompletionResult]::new('--home', '--home', [CompletionResultType]::ParameterName, 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print data as JSON, one object per line')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print nothing on success')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print nothing on success')
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
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'One health verdict for a watchdog: node, box, peers, forks, disk space')
            [CompletionResult]::new('invite', 'invite', [CompletionResultType]::ParameterValue, 'Print a one-line invite that lets another machine join this network')
            [CompletionResult]::new('web', 'web', [CompletionResultType]::ParameterValue, 'Print this node''s page address, with its access token, for a browser')
            [CompletionResult]::new('init', 'init', [CompletionResultType]::ParameterValue, 'Create a home: identity key, network key and client token')
            [CompletionResult]::new('id', 'id', [CompletionResultType]::ParameterValue, 'Print this node''s author id (its public key)')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write man pages and shell completions (for packagers)')
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
        'dshare;help;generate' {
            break
        }
        'dshare;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
