-- wrk script: replays the requests of benches/traffic.py (path and user
-- agent per line, in the file named by $TRAFFIC) with browser headers, and
-- prints a machine-readable summary with latency percentiles.
-- Globals, so that benches/batch.lua can fill them with its own requests
-- and reuse request() and done().
requests = {}
counter = 0

function init(args)
    for line in io.lines(os.getenv("TRAFFIC")) do
        local path, agent = line:match("^(.-)\t(.*)$")
        requests[#requests + 1] = wrk.format("GET", path, {
            ["Host"] = "collector.example.com",
            ["User-Agent"] = agent,
            ["Accept"] = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
            ["Accept-Encoding"] = "gzip, deflate, br",
            ["Accept-Language"] = "en-US,en;q=0.9",
            ["Referer"] = "https://shop.example.com/",
        })
    end
    counter = math.random(#requests)
end

function request()
    counter = counter % #requests + 1
    return requests[counter]
end

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    io.write(string.format("RESULT rate=%.1f requests=%d errors=%d p50_us=%d p99_us=%d p999_us=%d\n",
        summary.requests / secs, summary.requests,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
        latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
