%% Erlang's side of bench/codec.py: times term_to_binary/binary_to_term in
%% compiled tight loops (an -eval loop would be interpreted by erl_eval).
%%
%% main/1 reads a file holding term_to_binary({Reps, [{Index, Ops, Term, Encoded}]})
%% and prints, per case, the bytes this OTP encodes Term to, then one line per
%% direction with the nanoseconds each repetition of Ops operations took.
-module(etf_loop).
-export([main/1]).

main(Path) ->
    {ok, Control} = file:read_file(Path),
    {Reps, Cases} = binary_to_term(Control),
    %% Before OTP 26 the default minor_version 1 writes Latin-1 atoms; ask for
    %% the UTF-8 atoms erldist and OTP 26+ write, so the work is the same.
    Utf8Default = list_to_integer(erlang:system_info(otp_release)) >= 26,
    io:format("otp ~s~n", [otp_version()]),
    lists:foreach(fun(Case) -> run(Case, Reps, Utf8Default) end, Cases),
    halt(0).

run({Index, Ops, Term, Encoded}, Reps, Utf8Default) ->
    Encode = fun(N) -> encode_loop(N, Term, Utf8Default, none) end,
    Decode = fun(N) -> decode_loop(N, Encoded, none) end,
    io:format("bytes ~w ~s~n", [Index, binary:encode_hex(encode(Term, Utf8Default))]),
    _ = [F(Ops) || F <- [Encode, Decode]],  % warm-up
    Times = [{time(Encode, Ops), time(Decode, Ops)} || _ <- lists:seq(1, Reps)],
    io:format("time ~w encode ~w~n", [Index, [E || {E, _} <- Times]]),
    io:format("time ~w decode ~w~n", [Index, [D || {_, D} <- Times]]).

time(Loop, Ops) ->
    T0 = erlang:monotonic_time(nanosecond),
    _ = Loop(Ops),
    erlang:monotonic_time(nanosecond) - T0.

encode(Term, true) -> term_to_binary(Term);
encode(Term, false) -> term_to_binary(Term, [{minor_version, 2}]).

%% Each result is passed on as the last argument, so no call can be dropped.
encode_loop(0, _Term, _Utf8Default, Last) -> Last;
encode_loop(N, Term, true, _) ->
    encode_loop(N - 1, Term, true, term_to_binary(Term));
encode_loop(N, Term, false, _) ->
    encode_loop(N - 1, Term, false, term_to_binary(Term, [{minor_version, 2}])).

decode_loop(0, _Bin, Last) -> Last;
decode_loop(N, Bin, _) ->
    decode_loop(N - 1, Bin, binary_to_term(Bin)).

otp_version() ->
    Release = erlang:system_info(otp_release),
    File = filename:join([code:root_dir(), "releases", Release, "OTP_VERSION"]),
    case file:read_file(File) of
        {ok, Text} -> string:trim(Text);
        {error, _} -> Release
    end.
