
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
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run a node: serve the box to this machine''s clients and to peers'
            cand send 'Send a message to every node; prints its id once it is stored on disk'
            cand log 'Print the conversation, oldest first'
            cand peers 'Show the known peers: up or down, last seen, round-trip time, in sync'
            cand verify 'Check every line of a message box; exit 1 if anything was tampered with'
            cand doctor 'One health verdict for a watchdog: node, box, peers, forks, disk space'
            cand invite 'Print a one-line invite that lets another machine join this network'
            cand web 'Print this node''s page address, with its access token, for a browser'
            cand init 'Create a home: identity key, network key and client token'
            cand id 'Print this node''s author id (its public key)'
            cand generate 'Write man pages and shell completions (for packagers)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dshare;serve'= {
            cand --listen 'Address to listen on (port 0 picks a free port; the real address is recorded in the home for the other commands)'
            cand --io-timeout 'Seconds a connection may stay silent (reading or writing) before it is closed'
            cand --peer 'A peer to start from, as http://HOST:PORT (repeatable; more are learned from it)'
            cand --advertise 'The address other nodes should use to reach this one [default: the listen address, unless it is a wildcard such as 0.0.0.0]'
            cand --fanout 'Peers each new message is pushed to at once when more are known; the rest get it from them'
            cand --workers 'Worker threads answering HTTP requests'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;send'= {
            cand --wait 'Wait until `all` peers that are up, or N of them, have stored the message'
            cand --timeout 'How long --wait waits, e.g. 10s, 500ms, 2m'
            cand --node 'Talk to the node at URL instead of the one running on the home'
            cand --token 'The node''s client token (default: the home''s)'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;log'= {
            cand -n 'Only the last N messages'
            cand --lines 'Only the last N messages'
            cand --node 'Talk to the node at URL instead of the one running on the home'
            cand --token 'The node''s client token (default: the home''s)'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand -f 'Keep printing messages as they arrive'
            cand --follow 'Keep printing messages as they arrive'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;peers'= {
            cand --node 'Talk to the node at URL instead of the one running on the home'
            cand --token 'The node''s client token (default: the home''s)'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;verify'= {
            cand --head 'A chain hash printed earlier by `verify`: fail unless the box still contains it (catches lines cut from the end)'
            cand --node 'Talk to the node at URL instead of the one running on the home'
            cand --token 'The node''s client token (default: the home''s)'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --peers 'Also compare this node''s digest with each peer''s: in sync, behind, ahead or diverged (exit 1 unless every peer that is up is in sync)'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;doctor'= {
            cand --min-free 'Unhealthy when less than this is free where the box lives (e.g. 64M, 1G)'
            cand --max-behind 'Unhealthy when a peer holds more than N messages this node lacks'
            cand --timeout 'How long to wait for each answer of the node, e.g. 5s, 500ms'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;invite'= {
            cand --url 'The address to put in the invite [default: the running node''s advertised address]'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;web'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;init'= {
            cand --join 'Join the network of an invite printed by `dshare invite` instead of making a new one'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;id'= {
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dshare;generate'= {
            cand --out 'Directory that receives man/ and completions/'
            cand --home 'The node''s home directory: box, keys, token, address [default: <data dir>/dshare]'
            cand --json 'Print data as JSON, one object per line'
            cand -q 'Print nothing on success'
            cand --quiet 'Print nothing on success'
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
            cand doctor 'One health verdict for a watchdog: node, box, peers, forks, disk space'
            cand invite 'Print a one-line invite that lets another machine join this network'
            cand web 'Print this node''s page address, with its access token, for a browser'
            cand init 'Create a home: identity key, network key and client token'
            cand id 'Print this node''s author id (its public key)'
            cand generate 'Write man pages and shell completions (for packagers)'
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
        &'dshare;help;generate'= {
        }
        &'dshare;help;help'= {
        }
    ]
    $completions[$command]
}
