-- Argo CD health check for bbconn.dev/BitbucketConnection (Lua 5.1, as Argo CD runs it).
--   Progressing: no status yet; a new generation not checked yet (status.observedGeneration
--                below metadata.generation, or Reconciling=True); Ready Unknown (a transient
--                cause such as RateLimited: the operator retries on its own).
--   Degraded:    Ready=False or Stalled=True; the message is "<cause>: <remedy>" of the first
--                Error problem (as `kubectl describe` lists them).
--   Healthy:     Ready=True for the current generation.
local hs = {}

local function condition(status, type_)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function first_problem(status, severity)
  if status == nil or status.problems == nil then
    return nil
  end
  for _, p in ipairs(status.problems) do
    if p.severity == severity then
      return p
    end
  end
  return nil
end

local function describe(c)
  if c == nil then
    return ""
  end
  local text = c.reason or ""
  if c.message ~= nil and c.message ~= "" then
    if text ~= "" then
      text = text .. ": "
    end
    text = text .. c.message
  end
  return text
end

local status = obj.status
local generation = obj.metadata and obj.metadata.generation
if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the first check"
  return hs
end

local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
  return hs
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for generation " .. tostring(generation) .. " to be checked (last checked: " ..
    tostring(status.observedGeneration or "none") .. ")"
  return hs
end

local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")
if (ready ~= nil and ready.status == "False") or (stalled ~= nil and stalled.status == "True") then
  hs.status = "Degraded"
  local p = first_problem(status, "Error")
  if p ~= nil then
    hs.message = (p.cause or "") .. ": " .. (p.remedy or p.message or "")
  elseif ready ~= nil and ready.status == "False" then
    hs.message = describe(ready)
  else
    hs.message = describe(stalled)
  end
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "All checks passed"
  local warnings = {}
  if status.problems ~= nil then
    for _, p in ipairs(status.problems) do
      if p.severity == "Warning" and p.cause ~= nil then
        table.insert(warnings, p.cause)
      end
    end
  end
  if #warnings > 0 then
    hs.message = hs.message .. " (" .. table.concat(warnings, ", ") .. ")"
  end
  return hs
end

-- Ready Unknown, or not written yet: a transient cause the operator retries by itself.
hs.status = "Progressing"
if ready ~= nil then
  hs.message = describe(ready)
else
  hs.message = "Waiting for the Ready condition"
end
return hs
