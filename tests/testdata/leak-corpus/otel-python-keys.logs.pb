
¤
›
"
telemetry.sdk.language
python
%
telemetry.sdk.name
opentelemetry
!
telemetry.sdk.version
1.45.2
=
service.instance.id&
$2928fe3e-c9ef-4d29-81b2-a3a180018c8d
"
service.name
otel-python-keys

service.version
1.4.2
,
deployment.environment.name
leak-corpusƒ

	shop.jobs1.0.0ì	INFO*v2t

event
visits.rollup
9

by_address+2)

2001:db8::7:0512

	127.0.0.1

total

ref	Â„·«¿2K
visits.by_email826

ada.plant0509@example.com

203.0.113.1082
job.name
rollupYø‰íÏ>í
‡
›
"
telemetry.sdk.language
python
%
telemetry.sdk.name
opentelemetry
!
telemetry.sdk.version
1.45.2
=
service.instance.id&
$2928fe3e-c9ef-4d29-81b2-a3a180018c8d
"
service.name
otel-python-keys

service.version
1.4.2
,
deployment.environment.name
leak-corpusg

	shop.jobs1.0.0QWARN*':%bounce from ada.plant0511@example.com2
job.name	
bouncesYÌ6íÏ>í