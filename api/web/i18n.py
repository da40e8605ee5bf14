"""The workbench's words in English and Simplified Chinese (a user's choice is remembered).

>>> t("en", "nav.worklist"), t("zh-CN", "nav.worklist")
('Worklist', '工作清单')
>>> t("en", "no.such.key")
'no.such.key'
>>> pick_lang("zh-CN,zh;q=0.9,en;q=0.8"), pick_lang("fr"), pick_lang(None)
('zh-CN', 'en', 'en')
"""

from __future__ import annotations

LANGS = ("en", "zh-CN")

_T: dict[str, tuple[str, str]] = {
    # key: (en, zh-CN)
    "app.title": ("meterwatch workbench", "meterwatch 工作台"),
    "nav.worklist": ("Worklist", "工作清单"),
    "nav.segments": ("Segments", "客户分群"),
    "nav.ops": ("Operations", "运行状况"),
    "nav.docs": ("API docs", "API 文档"),
    "nav.signout": ("Sign out", "退出"),
    "nav.lang": ("中文", "English"),
    "signin.title": ("Sign in", "登录"),
    "signin.token": ("Access token", "访问令牌"),
    "signin.help": (
        "Paste the token from `meterwatch token create` once; the browser keeps a session.",
        "粘贴 `meterwatch token create` 生成的令牌一次即可，浏览器会保持会话。",
    ),
    "signin.submit": ("Sign in", "登录"),
    "signin.bad": ("Unknown, expired or revoked token.", "令牌无效、已过期或已吊销。"),
    "signin.csrf": ("The form expired; please try again.", "表单已过期，请重试。"),
    "who.ops": ("ops", "运维"),
    "who.manager": ("manager", "客户经理"),
    "worklist.title": ("Open alerts", "待处理告警"),
    "worklist.lede": (
        "Most urgent first: severity, then money or ratio at stake. Call back within 24 hours.",
        "按紧急程度排序：先看级别，再看涉及金额或倍数。请在 24 小时内回访。",
    ),
    "worklist.empty": ("No alerts match.", "没有符合条件的告警。"),
    "worklist.new": ("New alerts have arrived.", "有新的告警。"),
    "worklist.reload": ("Show them", "刷新查看"),
    "worklist.more": ("Next page", "下一页"),
    "worklist.truncated": (
        "Only the newest alerts were looked at; narrow the dates to see older ones.",
        "只检索了最新的告警；请缩小日期范围查看更早的。",
    ),
    "filter.status": ("Status", "状态"),
    "filter.rule": ("Rule", "规则"),
    "filter.severity": ("Severity", "级别"),
    "filter.segment": ("Segment", "分群"),
    "filter.manager": ("Manager", "客户经理"),
    "filter.since": ("From", "起始"),
    "filter.until": ("To", "截止"),
    "filter.any": ("any", "全部"),
    "filter.apply": ("Filter", "筛选"),
    "col.customer": ("Customer", "客户"),
    "col.rule": ("Rule", "规则"),
    "col.explanation": ("What happened", "情况说明"),
    "col.stake": ("At stake", "涉及"),
    "col.age": ("Age", "时长"),
    "col.callback": ("Call back", "回访时限"),
    "col.status": ("Status", "状态"),
    "col.action": ("Action", "操作"),
    "status.open": ("open", "待处理"),
    "status.acknowledged": ("acknowledged", "已确认"),
    "status.resolved": ("resolved", "已解决"),
    "severity.critical": ("critical", "严重"),
    "severity.warning": ("warning", "警告"),
    "severity.info": ("info", "提示"),
    "callback.overdue": ("overdue by {h} h", "已超时 {h} 小时"),
    "callback.left": ("{h} h left", "剩余 {h} 小时"),
    "callback.done": ("done", "已完成"),
    "age.hours": ("{h} h", "{h} 小时"),
    "age.days": ("{d} d", "{d} 天"),
    "action.ack": ("Acknowledge", "确认"),
    "action.outcome": ("Record outcome", "记录结果"),
    "action.note": ("Note (optional)", "备注（可选）"),
    "action.save": ("Save", "保存"),
    "action.occupant": ("Mark an occupant change", "登记住户变更"),
    "action.occupant_since": ("Moved in on", "入住日期"),
    "action.occupant_done": ("Occupant change sent to the registry.", "住户变更已提交到客户档案。"),
    "action.conflict": ("Already handled by someone else.", "已被他人处理。"),
    "outcome.reached": ("reached the customer", "已联系到客户"),
    "outcome.no_answer": ("no answer", "无人接听"),
    "outcome.explained_appliance": ("explained: new appliance", "原因：新电器"),
    "outcome.explained_new_occupant": ("explained: new occupant", "原因：新住户"),
    "outcome.explained_weather": ("explained: weather", "原因：天气"),
    "outcome.explained_meter_fault": ("explained: meter fault", "原因：电表故障"),
    "outcome.explained_other": ("explained: other", "原因：其他"),
    "customer.identity": ("Customer", "客户信息"),
    "customer.phone": ("Phone", "电话"),
    "customer.segment": ("Segment", "分群"),
    "customer.kind": ("kind", "类型"),
    "customer.tariff": ("Tariff", "电价类别"),
    "customer.consent": ("SMS consent", "短信授权"),
    "customer.consent_yes": ("yes", "已同意"),
    "customer.consent_no": ("no", "未同意"),
    "customer.occupancy": ("Occupancy", "居住类型"),
    "customer.occupant_since": ("Occupant since", "当前住户入住"),
    "customer.landlord": ("Landlord", "房东"),
    "customer.manager": ("Manager", "客户经理"),
    "customer.meters": ("Meters", "电表"),
    "customer.cycle": ("This cycle", "本期"),
    "customer.ctd": ("to date", "至今"),
    "customer.projected": ("projected", "预计"),
    "customer.same_period": ("same period last year", "去年同期"),
    "chart.daily": ("Daily use, last 90 days", "近 90 天每日用电"),
    "chart.daily_desc": (
        "Dots: kWh per day. Band: the baseline's ordinary range. Dashed: the same days last year.",
        "圆点：每日用电量。色带：基线的正常范围。虚线：去年同日。",
    ),
    "chart.cumulative": ("This cycle, cumulative", "本期累计用电"),
    "chart.cumulative_desc": (
        "Solid: this cycle to date, dotted: projection to the cycle end; dashed: the same-period cycle.",
        "实线：本期至今；点线：预计至期末；虚线：去年同期。",
    ),
    "chart.cycles": ("Billing cycles", "历史账期"),
    "chart.no_data": ("No data yet.", "暂无数据。"),
    "legend.kwh": ("kWh", "用电量"),
    "legend.band": ("baseline band", "基线范围"),
    "legend.last_year": ("last year", "去年"),
    "legend.projection": ("projection", "预计"),
    "customer.alerts": ("Alerts", "告警记录"),
    "customer.no_alerts": ("No alerts.", "没有告警。"),
    "customer.notifications": ("Notifications", "通知记录"),
    "customer.no_notifications": ("No notifications.", "没有通知。"),
    "customer.history": ("History", "处理记录"),
    "segments.title": ("Customer segments", "客户分群"),
    "segments.size": ("customers", "户"),
    "segments.centre": ("Centre", "中心"),
    "segments.members": ("Members", "成员"),
    "segments.empty": ("No segments yet.", "暂无分群。"),
    "ops.title": ("Pipeline health", "运行状况"),
    "ops.lag": ("Consumer lag (readings waiting)", "消费延迟（待处理读数）"),
    "ops.dlq": ("Dead letters by reason", "死信（按原因）"),
    "ops.alerts": ("Alerts per 100 customers, by rule", "每百户告警数（按规则）"),
    "ops.sms": ("SMS outcomes", "短信结果"),
    "ops.readings": ("Readings processed", "已处理读数"),
    "ops.heartbeat": ("Read model updated", "数据更新于"),
    "ops.customers": ("Customers", "客户数"),
    "ops.none": ("none", "无"),
    "ops.seconds_ago": ("{s} s ago", "{s} 秒前"),
    "error.not_found": ("Not found (or not yours).", "未找到（或无权查看）。"),
    "error.forbidden": ("This page is for ops.", "此页面仅限运维人员。"),
}


def t(lang: str, key: str, **kw: object) -> str:
    pair = _T.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "zh-CN" else pair[0]
    return text.format(**kw) if kw else text


def pick_lang(accept_language: str | None) -> str:
    """The first supported language of an Accept-Language header (default English)."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"
