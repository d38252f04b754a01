
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
            cand verify 'Check every line of a message box; exit 1 if anything was tampered with'
            cand web 'Print this node''s page address, with its access token, for a browser'
            cand init 'Create a home: identity key, network key and client token'
            cand id 'Print this node''s author id (its public key)'
            cand generate 'Write man pages and shell completions (for packagers)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'dshare;serve'= {
            cand --listen 'Address to listen on (port 0 picks a free port; the real address is recorded in the home for the other commands)'
            cand --io-timeout 'Seconds a connection may stay silent (reading or writing) before it is closed'
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
        &'dshare;verify'= {
            cand --head 'A chain hash printed earlier by `verify`: fail unless the box still contains it (catches lines cut from the end)'
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
            cand verify 'Check every line of a message box; exit 1 if anything was tampered with'
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
        &'dshare;help;verify'= {
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
