-- Runs an Argo CD health.lua against the cases yaml2lua.py made from its health_test.yaml,
-- the way Argo CD does for an argocd-cm health customization: a fresh environment with only
-- the base and table libraries and a safe os (os.time, os.date, os.clock, os.difftime; no
-- string or math library, and no string methods), the object as the global `obj`, and the
-- script's returned table compared with the expected status and message.
--
-- usage: lua5.1 run_tests.lua health.lua cases.lua
local script_path, cases_path = arg[1], arg[2]
assert(_VERSION == "Lua 5.1", "Argo CD runs Lua 5.1 (gopher-lua); this is " .. _VERSION)
local script = assert(loadfile(script_path))
local cases = assert(loadfile(cases_path))()

local safe_os = { time = os.time, date = os.date, clock = os.clock, difftime = os.difftime }
local base = {
  "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print", "rawequal",
  "rawget", "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall",
}

local function sandbox(obj)
  local env = { obj = obj, table = {}, os = safe_os, _VERSION = _VERSION }
  for _, name in ipairs(base) do
    env[name] = _G[name]
  end
  for k, v in pairs(table) do
    env.table[k] = v
  end
  env._G = env
  return env
end

local function deepcopy(v)
  if type(v) ~= "table" then
    return v
  end
  local t = {}
  for k, x in pairs(v) do
    t[k] = deepcopy(x)
  end
  return t
end

local valid = { Healthy = true, Progressing = true, Degraded = true, Suspended = true, Missing = true, Unknown = true }
local string_mt = debug.getmetatable("")
local passed, failed = 0, 0
for _, case in ipairs(cases) do
  setfenv(script, sandbox(deepcopy(case.obj)))
  debug.setmetatable("", nil) -- gopher-lua without the string library has no string methods
  local ok, hs = pcall(script)
  debug.setmetatable("", string_mt)
  local problem
  if not ok then
    problem = "error: " .. tostring(hs)
  elseif type(hs) ~= "table" then
    problem = "returned " .. type(hs) .. ", not a table"
  elseif not valid[hs.status] then
    problem = "invalid status " .. tostring(hs.status)
  elseif hs.status ~= case.status or (hs.message or "") ~= case.message then
    problem = "got " .. tostring(hs.status) .. " " .. string.format("%q", tostring(hs.message)) ..
      "\n      want " .. case.status .. " " .. string.format("%q", case.message)
  end
  if problem then
    failed = failed + 1
    print("FAIL " .. case.inputPath .. ": " .. problem)
  else
    passed = passed + 1
    print("ok   " .. case.inputPath .. ": " .. hs.status .. " " .. string.format("%q", hs.message or ""))
  end
end
print(passed .. " passed, " .. failed .. " failed")
os.exit(failed == 0 and 0 or 1)
