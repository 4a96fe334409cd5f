%% Erlang's side of `python -m bench`: compiled drivers, so every Erlang
%% figure comes from a compiled loop, never from erl_eval.
%%
%% The same receiver protocol serves every direction: a sink gets
%% {start, From, N}, then N messages {seq, I, <<"hello">>}, then answers
%% From ! {done, N}. bench_echo is a gen_server answering each call with
%% its request. bench_ctl runs a function of this module for a peer that
%% has no other way to start Erlang-side work: {run, From, Fun, Args} is
%% answered with From ! {result, Value}. Times are in nanoseconds.
-module(dist_bench).
-behaviour(gen_server).
-export([start/0, info/0, ping_times/2, connect_times/2, blast/2, calls/4, rpcs/3,
         echo/1, connect_all/1, memory/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(TIMEOUT, 120000).

%% Register the sink and the echo server on this node.
start() ->
    {ok, _} = gen_server:start({local, bench_echo}, ?MODULE, [], []),
    Sink = spawn(fun sink/0),
    true = register(bench_sink, Sink),
    true = register(bench_ctl, spawn(fun ctl/0)),
    ok.

info() ->
    {otp_version(), list_to_integer(os:getpid()), erlang:system_info(schedulers_online)}.

ctl() ->
    receive
        {run, From, Fun, Args} ->
            spawn(fun() -> From ! {result, apply(?MODULE, Fun, Args)} end),
            ctl()
    end.

%% net_adm:ping/1 N times (after one warm-up ping that connects).
ping_times(Node, N) ->
    pong = net_adm:ping(Node),
    [timed(fun() -> pong = net_adm:ping(Node) end) || _ <- lists:seq(1, N)].

%% Cold connects (EPMD lookup + handshake), each after a disconnect and a
%% pause so the peer has torn its side down.
connect_times(Node, N) ->
    [begin
         _ = erlang:disconnect_node(Node),
         timer:sleep(30),
         timed(fun() -> true = net_kernel:connect_node(Node) end)
     end || _ <- lists:seq(1, N)].

%% One-way throughput: N small messages to Dest, until the sink says done.
blast(Dest, N) ->
    T0 = erlang:monotonic_time(nanosecond),
    Dest ! {start, self(), N},
    send_loop(Dest, 1, N),
    receive
        {done, N} -> erlang:monotonic_time(nanosecond) - T0
    after ?TIMEOUT -> timeout
    end.

send_loop(_Dest, I, N) when I > N -> ok;
send_loop(Dest, I, N) ->
    Dest ! {seq, I, <<"hello">>},
    send_loop(Dest, I + 1, N).

sink() ->
    receive
        {start, From, N} ->
            count(N),
            From ! {done, N},
            sink()
    end.

count(0) -> ok;
count(N) ->
    receive {seq, _, _} -> count(N - 1) end.

%% Callers concurrent processes, each making PerCaller gen_server calls to
%% Server. Returns {elapsed, the first caller's per-call times}.
calls(Server, Callers, PerCaller, Request) ->
    Self = self(),
    T0 = erlang:monotonic_time(nanosecond),
    Pids = [spawn_link(fun() -> Self ! {self(), caller(Server, PerCaller, Request)} end)
            || _ <- lists:seq(1, Callers)],
    [First | _] = [receive {P, Times} -> Times after ?TIMEOUT -> exit(timeout) end
                   || P <- Pids],
    {erlang:monotonic_time(nanosecond) - T0, First}.

caller(Server, N, Request) ->
    [timed(fun() -> Request = gen_server:call(Server, Request) end)
     || _ <- lists:seq(1, N)].

%% N erpc:call round trips of dist_bench:echo(Request) on Node (a Python
%% node exposes the same name). Returns {elapsed, per-call times}.
rpcs(Node, N, Request) ->
    Request = erpc:call(Node, dist_bench, echo, [Request]),
    T0 = erlang:monotonic_time(nanosecond),
    Times = [timed(fun() -> Request = erpc:call(Node, dist_bench, echo, [Request]) end)
             || _ <- lists:seq(1, N)],
    {erlang:monotonic_time(nanosecond) - T0, Times}.

echo(X) -> X.

%% Connect to every node in Nodes; the number that answered.
connect_all(Nodes) ->
    length([N || N <- Nodes, net_kernel:connect_node(N)]).

%% Memory as the VM counts it (bytes), for the RSS comparison.
memory() ->
    erlang:memory(total).

timed(Fun) ->
    T0 = erlang:monotonic_time(nanosecond),
    Fun(),
    erlang:monotonic_time(nanosecond) - T0.

otp_version() ->
    Release = erlang:system_info(otp_release),
    File = filename:join([code:root_dir(), "releases", Release, "OTP_VERSION"]),
    case file:read_file(File) of
        {ok, Text} -> string:trim(Text);
        {error, _} -> list_to_binary(Release)
    end.

init([]) -> {ok, nostate}.
handle_call(Request, _From, State) -> {reply, Request, State}.
handle_cast(_Msg, State) -> {noreply, State}.
handle_info(_Msg, State) -> {noreply, State}.
