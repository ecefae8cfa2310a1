-- wrk script: POSTs the batch bodies of benches/batches.py (the file named
-- by $BATCHES) to /csc-batch, gzip-encoded when $GZIP is 1, and prints the
-- summary line of benches/traffic.lua, whose request() and done() it uses.
dofile("benches/traffic.lua")

function init(args)
    local f = assert(io.open(os.getenv("BATCHES"), "rb"))
    local data = f:read("*a")
    f:close()
    local pos = 1
    local headers_extra = os.getenv("GZIP") == "1" and { ["Content-Encoding"] = "gzip" } or {}
    while pos <= #data do
        local nl = data:find("\n", pos, true)
        local agent, len = data:sub(pos, nl - 1):match("^(.-)\t(%d+)$")
        local body = data:sub(nl + 1, nl + tonumber(len))
        local headers = {
            ["Host"] = "collector.example.com",
            ["User-Agent"] = agent,
            ["Content-Type"] = "text/plain;charset=UTF-8",
            ["Origin"] = "https://shop.example.com",
        }
        for k, v in pairs(headers_extra) do headers[k] = v end
        requests[#requests + 1] = wrk.format("POST", "/csc-batch", headers, body)
        pos = nl + tonumber(len) + 1
    end
    counter = math.random(#requests)
end
