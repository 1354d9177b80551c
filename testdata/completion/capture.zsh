# zsh -f capture.zsh SCRIPT LINE [fpath]: load the completion SCRIPT into
# an interactive zsh on a pseudo-terminal (zpty), type LINE and a TAB, and
# print the candidates the completion system offers for the last word,
# one a line. compadd is wrapped to print what it would add, after zsh's
# own matching against the word, instead of adding it; the completion
# ends there. With "fpath", SCRIPT is not sourced but installed as _tug in
# a directory of $fpath, for compinit to find. Used by
# e2e_completion_test.go. Runs in SCRIPT's directory, so that a fallback
# to file names finds only these files.
zmodload zsh/zpty || exit 2
local script=${1:a} line=$2 setup=${1:a:h}/capture-setup.zsh before after
cd ${script:h} || exit 2
if [[ $3 == fpath ]]; then
    mkdir -p fpath && cp $script fpath/_tug || exit 2
    before="fpath=(${(q)PWD}/fpath \$fpath)"
else
    after="source ${(q)script}"
fi
cat >$setup <<SETUP
PROMPT= RPROMPT= PS2=
unsetopt prompt_sp
unset zle_bracketed_paste
$before
autoload -Uz compinit && compinit -u -D
$after
zstyle ':completion:*' insert-tab false
bindkey '^I' complete-word
__tug_mark() { builtin print -r -- \$'\n<<tug-mark>>' }
compprefuncs=(__tug_mark)
comppostfuncs=(__tug_mark exit)
compadd() {
    # Calls that only ask (-O, -A, -D) go through.
    if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
        builtin compadd "\$@"
        return
    fi
    local -a __hits
    builtin compadd -A __hits "\$@"
    local h
    for h in "\${__hits[@]}"; do builtin print -r -- "<<tug-cand>>\$h"; done
}
builtin print -r -- '<<tug-ready>>'
SETUP
zpty z zsh -f -i || exit 2
zpty -w z "source ${(q)setup}"
local out
while zpty -r z out; do
    [[ $out == '<<tug-ready>>'* ]] && break
done
zpty -w -n z "$line"$'\t'
local marks=0
while zpty -r z out; do
    out=${out//[$'\r\n']/}
    if [[ $out == '<<tug-mark>>'* ]]; then
        (( ++marks == 2 )) && break
    elif [[ $out == '<<tug-cand>>'* ]]; then
        print -r -- ${out#'<<tug-cand>>'}
    fi
done
zpty -d z
