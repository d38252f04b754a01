# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_dshare_global_optspecs
    string join \n home= json q/quiet h/help V/version
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
complete -c dshare -n "__fish_dshare_needs_command" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_needs_command" -s q -l quiet -d 'Print nothing on success'
complete -c dshare -n "__fish_dshare_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dshare -n "__fish_dshare_needs_command" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "serve" -d 'Run a node: serve the box to this machine\'s clients and to peers'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "send" -d 'Send a message to every node; prints its id once it is stored on disk'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "log" -d 'Print the conversation, oldest first'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "peers" -d 'Show the known peers: up or down, last seen, round-trip time, in sync'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "verify" -d 'Check every line of a message box; exit 1 if anything was tampered with'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "doctor" -d 'One health verdict for a watchdog: node, box, peers, forks, disk space'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "invite" -d 'Print a one-line invite that lets another machine join this network'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "web" -d 'Print this node\'s page address, with its access token, for a browser'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "init" -d 'Create a home: identity key, network key and client token'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "id" -d 'Print this node\'s author id (its public key)'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "generate" -d 'Write man pages and shell completions (for packagers)'
complete -c dshare -n "__fish_dshare_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l listen -d 'Address to listen on (port 0 picks a free port; the real address is recorded in the home for the other commands)' -r
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l io-timeout -d 'Seconds a connection may stay silent (reading or writing) before it is closed' -r
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l peer -d 'A peer to start from, as http://HOST:PORT (repeatable; more are learned from it)' -r
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l advertise -d 'The address other nodes should use to reach this one [default: the listen address, unless it is a wildcard such as 0.0.0.0]' -r
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l fanout -d 'Peers each new message is pushed to at once when more are known; the rest get it from them' -r
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l workers -d 'Worker threads answering HTTP requests' -r
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand serve" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand serve" -s q -l quiet -d 'Print nothing on success'
complete -c dshare -n "__fish_dshare_using_subcommand serve" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand serve" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand send" -l wait -d 'Wait until `all` peers that are up, or N of them, have stored the message' -r
complete -c dshare -n "__fish_dshare_using_subcommand send" -l timeout -d 'How long --wait waits, e.g. 10s, 500ms, 2m' -r
complete -c dshare -n "__fish_dshare_using_subcommand send" -l node -d 'Talk to the node at URL instead of the one running on the home' -r
complete -c dshare -n "__fish_dshare_using_subcommand send" -l token -d 'The node\'s client token (default: the home\'s)' -r
complete -c dshare -n "__fish_dshare_using_subcommand send" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand send" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand send" -s q -l quiet -d 'Print nothing on success'
complete -c dshare -n "__fish_dshare_using_subcommand send" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand send" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand log" -s n -l lines -d 'Only the last N messages' -r
complete -c dshare -n "__fish_dshare_using_subcommand log" -l node -d 'Talk to the node at URL instead of the one running on the home' -r
complete -c dshare -n "__fish_dshare_using_subcommand log" -l token -d 'The node\'s client token (default: the home\'s)' -r
complete -c dshare -n "__fish_dshare_using_subcommand log" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand log" -s f -l follow -d 'Keep printing messages as they arrive'
complete -c dshare -n "__fish_dshare_using_subcommand log" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand log" -s q -l quiet -d 'Print nothing on success'
complete -c dshare -n "__fish_dshare_using_subcommand log" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand log" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand peers" -l node -d 'Talk to the node at URL instead of the one running on the home' -r
complete -c dshare -n "__fish_dshare_using_subcommand peers" -l token -d 'The node\'s client token (default: the home\'s)' -r
complete -c dshare -n "__fish_dshare_using_subcommand peers" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand peers" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand peers" -s q -l quiet -d 'Print nothing on success'
complete -c dshare -n "__fish_dshare_using_subcommand peers" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand peers" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l head -d 'A chain hash printed earlier by `verify`: fail unless the box still contains it (catches lines cut from the end)' -r
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l node -d 'Talk to the node at URL instead of the one running on the home' -r
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l token -d 'The node\'s client token (default: the home\'s)' -r
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l peers -d 'Also compare this node\'s digest with each peer\'s: in sync, behind, ahead or diverged (exit 1 unless every peer that is up is in sync)'
complete -c dshare -n "__fish_dshare_using_subcommand verify" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand verify" -s q -l quiet -d 'Print nothing on success'
complete -c dshare -n "__fish_dshare_using_subcommand verify" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand verify" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -l min-free -d 'Unhealthy when less than this is free where the box lives (e.g. 64M, 1G)' -r
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -l max-behind -d 'Unhealthy when a peer holds more than N messages this node lacks' -r
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -l timeout -d 'How long to wait for each answer of the node, e.g. 5s, 500ms' -r
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -s q -l quiet -d 'Print nothing on success'
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dshare -n "__fish_dshare_using_subcommand doctor" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand invite" -l url -d 'The address to put in the invite [default: the running node\'s advertised address]' -r
complete -c dshare -n "__fish_dshare_using_subcommand invite" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand invite" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand invite" -s q -l quiet -d 'Print nothing on success'
complete -c dshare -n "__fish_dshare_using_subcommand invite" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand invite" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand web" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand web" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand web" -s q -l quiet -d 'Print nothing on success'
complete -c dshare -n "__fish_dshare_using_subcommand web" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand web" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand init" -l join -d 'Join the network of an invite printed by `dshare invite` instead of making a new one' -r
complete -c dshare -n "__fish_dshare_using_subcommand init" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand init" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand init" -s q -l quiet -d 'Print nothing on success'
complete -c dshare -n "__fish_dshare_using_subcommand init" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand init" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand id" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand id" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand id" -s q -l quiet -d 'Print nothing on success'
complete -c dshare -n "__fish_dshare_using_subcommand id" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand id" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand generate" -l out -d 'Directory that receives man/ and completions/' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand generate" -l home -d 'The node\'s home directory: box, keys, token, address [default: <data dir>/dshare]' -r -F
complete -c dshare -n "__fish_dshare_using_subcommand generate" -l json -d 'Print data as JSON, one object per line'
complete -c dshare -n "__fish_dshare_using_subcommand generate" -s q -l quiet -d 'Print nothing on success'
complete -c dshare -n "__fish_dshare_using_subcommand generate" -s h -l help -d 'Print help'
complete -c dshare -n "__fish_dshare_using_subcommand generate" -s V -l version -d 'Print version'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify doctor invite web init id generate help" -f -a "serve" -d 'Run a node: serve the box to this machine\'s clients and to peers'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify doctor invite web init id generate help" -f -a "send" -d 'Send a message to every node; prints its id once it is stored on disk'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify doctor invite web init id generate help" -f -a "log" -d 'Print the conversation, oldest first'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify doctor invite web init id generate help" -f -a "peers" -d 'Show the known peers: up or down, last seen, round-trip time, in sync'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify doctor invite web init id generate help" -f -a "verify" -d 'Check every line of a message box; exit 1 if anything was tampered with'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify doctor invite web init id generate help" -f -a "doctor" -d 'One health verdict for a watchdog: node, box, peers, forks, disk space'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify doctor invite web init id generate help" -f -a "invite" -d 'Print a one-line invite that lets another machine join this network'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify doctor invite web init id generate help" -f -a "web" -d 'Print this node\'s page address, with its access token, for a browser'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify doctor invite web init id generate help" -f -a "init" -d 'Create a home: identity key, network key and client token'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify doctor invite web init id generate help" -f -a "id" -d 'Print this node\'s author id (its public key)'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify doctor invite web init id generate help" -f -a "generate" -d 'Write man pages and shell completions (for packagers)'
complete -c dshare -n "__fish_dshare_using_subcommand help; and not __fish_seen_subcommand_from serve send log peers verify doctor invite web init id generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
