-- wrk script of bench/oidc.sh: refresh-token rotation, a fresh token on every request.
--
--   OIDC_WRK_AUTH      the Authorization header (client_secret_basic)
--   OIDC_WRK_POOL_IN   file of unpresented refresh tokens, one a line (each its own family)
--   OIDC_WRK_POOL_OUT  where done() writes the tokens still unpresented at the end
--
-- The pool is a FIFO: request() presents the token at its head, and response() appends the
-- successor carried by each 200 (the `refresh_token` of the answer). So every request
-- presents a token never presented before, each family rotates in turn, and the pool does
-- not run dry whatever the rate. Tokens of requests in flight when wrk stops are lost (their
-- answers are never read); the others are handed on to the next run. done() prints
-- "refresh: sent N ok N bad N empty N left N": any bad answer or empty pool fails the run.
-- Run with -t1 (one thread, one pool).

local auth = os.getenv("OIDC_WRK_AUTH")
local pool_in = os.getenv("OIDC_WRK_POOL_IN")
local pool_out = os.getenv("OIDC_WRK_POOL_OUT")

q, head, tail = {}, 1, 1
sent, ok, bad, empty = 0, 0, 0, 0

local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = auth,
}

function init(args)
    for line in io.lines(pool_in) do
        if #line > 0 then
            q[tail] = line
            tail = tail + 1
        end
    end
end

function request()
    local token = "pool-is-empty"
    if head < tail then
        token = q[head]
        q[head] = nil
        head = head + 1
        sent = sent + 1
    else
        empty = empty + 1
    end
    return wrk.format("POST", "/oauth2/token", headers,
        "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, _, body)
    local successor = status == 200 and body:match('"refresh_token":"(rt_[%w_%-]+)"')
    if successor then
        q[tail] = successor
        tail = tail + 1
        ok = ok + 1
    else
        bad = bad + 1
    end
end

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function done(summary, latency, requests)
    local t = threads[1]
    local tq, th, tt = t:get("q"), t:get("head"), t:get("tail")
    local f = assert(io.open(pool_out, "w"))
    local left = 0
    for i = th, tt - 1 do
        if tq[i] then
            f:write(tq[i], "\n")
            left = left + 1
        end
    end
    f:close()
    io.write(string.format("refresh: sent %d ok %d bad %d empty %d left %d\n",
        t:get("sent"), t:get("ok"), t:get("bad"), t:get("empty"), left))
end
