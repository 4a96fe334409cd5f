%% A stand-in for a Gleam node running distribute 4.0.0, for the interop tests.
%%
%% It sends, calls and replies with exactly the shapes and bytes of the wire
%% card (gleam-distribute-wire.md): {Tag, Binary} messages (section 6.2), the
%% call sequence with the reply subject inside the request (6.4), and names
%% looked up in global as binaries (7.4). The protocol is the card's counter
%% (test/call_test.gleam: Increment = 00 ++ int, GetCount = 01 ++ subject),
%% extended with Hold (02 ++ subject: answered only at Release, 03) and
%% Crash (04 ++ subject: the actor exits).
-module(gleam_peer).
-export([start_counter/1, counter/2, send/2, call/2, call/3, call_pid/4,
         call_isolated/2, request/2, subject_bin/1, decode_subject/1]).

%% codec.subject(): u32(len) ++ term_to_binary({subject, Pid, Tag}).
subject_bin(Subject) ->
    Etf = term_to_binary(Subject),
    <<(byte_size(Etf)):32, Etf/binary>>.

%% distribute_ffi_utils:decode_subject_safe, with the sized decoder's leftover.
decode_subject(<<Len:32, Rest/binary>>) when byte_size(Rest) >= Len ->
    <<Body:Len/binary, Tail/binary>> = Rest,
    case catch binary_to_term(Body, [safe]) of
        {subject, Pid, _} = Subject when is_pid(Pid) -> {ok, Subject, Tail};
        _ -> error
    end;
decode_subject(_) -> error.

%% The request bytes, as the Gleam encoder writes them.
request(increment, N) -> <<0, N:64/signed>>;
request(get_count, Subject) -> <<1, (subject_bin(Subject))/binary>>;
request(hold, Subject) -> <<2, (subject_bin(Subject))/binary>>;
request(release, _) -> <<3>>;
request(crash, Subject) -> <<4, (subject_bin(Subject))/binary>>.

decode_request(<<0, N:64/signed>>) -> {increment, N};
decode_request(<<3>>) -> release;
decode_request(<<Id, Rest/binary>>) when Id =:= 1; Id =:= 2; Id =:= 4 ->
    case decode_subject(Rest) of
        {ok, Subject, <<>>} -> {element(Id, {get_count, hold, release, crash}), Subject};
        _ -> error
    end;
decode_request(_) -> error.

%% actor.start_registered: a process that selects {NameBin, Binary} and drops
%% everything else, registered in global under the binary name.
start_counter(NameBin) ->
    Pid = spawn(fun() -> counter(NameBin, {0, []}) end),
    yes = global:register_name(NameBin, Pid),
    Pid.

counter(Name, {Count, Held} = State) ->
    receive
        {Name, Bin} when is_binary(Bin) ->
            case decode_request(Bin) of
                {increment, N} -> counter(Name, {Count + N, Held});
                {get_count, Subject} -> reply(Subject, Count), counter(Name, State);
                {hold, Subject} -> counter(Name, {Count, [Subject | Held]});
                release ->
                    [reply(S, Count) || S <- lists:reverse(Held)],
                    counter(Name, {Count, []});
                {crash, _} -> exit(crashed);
                error -> counter(Name, State)
            end;
        _Garbage -> counter(Name, State)
    end.

%% global.reply with codec.int(): ReplyPid ! {ReplyTag, <<N:64>>}.
reply({subject, Pid, Tag}, N) -> Pid ! {Tag, <<N:64/signed>>}.

%% global.send to registry.lookup(Name): Pid ! {NameBin, Payload}.
send(NameBin, Payload) ->
    case global:whereis_name(NameBin) of
        undefined -> not_found;
        Pid -> Pid ! {NameBin, Payload}, ok
    end.

%% global.call(registry.lookup(Name), GetCount, Timeout), decoded with codec.int().
call(NameBin, Timeout) -> call(NameBin, get_count, Timeout).

call(NameBin, Kind, Timeout) ->
    case global:whereis_name(NameBin) of
        undefined -> {error, not_found};
        Pid -> call_pid(Pid, NameBin, fun(S) -> request(Kind, S) end, Timeout)
    end.

%% The sequence of global.gleam:call (card 6.4).
call_pid(Pid, Tag, MakeRequest, Timeout) ->
    MonRef = erlang:monitor(process, Pid),
    ReplyRef = make_ref(),
    Pid ! {Tag, MakeRequest({subject, self(), ReplyRef})},
    receive
        {ReplyRef, Resp} ->
            erlang:demonitor(MonRef, [flush]),
            case Resp of
                <<N:64/signed>> -> {ok, N};
                _ -> {error, decode_failed}
            end;
        {'DOWN', MonRef, process, Pid, _} -> drain(ReplyRef), {error, target_down}
    after Timeout ->
        erlang:demonitor(MonRef, [flush]), drain(ReplyRef), {error, timeout}
    end.

drain(ReplyRef) ->
    receive {ReplyRef, _} -> drain(ReplyRef) after 0 -> ok end.

%% global.call_isolated: the same call from an unlinked proxy, so the reply
%% subject's owner is the proxy. Returns {Result, ProxyPid}.
call_isolated(NameBin, Timeout) ->
    Self = self(),
    {Proxy, PRef} = spawn_monitor(fun() -> Self ! {self(), isolated, call(NameBin, Timeout)} end),
    receive
        {Proxy, isolated, Result} -> erlang:demonitor(PRef, [flush]), {Result, Proxy};
        {'DOWN', PRef, process, Proxy, _} -> {{error, proxy_crashed}, Proxy}
    after Timeout + 100 ->
        exit(Proxy, kill), {{error, timeout}, Proxy}
    end.
