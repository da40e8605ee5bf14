# A stand-in for the official apache/kafka image, for machines without a container
# registry (meterwatch's CI): the same Apache Kafka broker jars that `meterwatch dev
# fetch` resolves from Maven Central (deploy/kafka/pom.xml), a JRE from Debian, on
# the local Debian base (deploy/docker/make-local-base.sh). It reads the same
# KAFKA_* / CLUSTER_ID environment as apache/kafka, so deploy/compose/compose.yaml
# runs on either. Built by deploy/compose/local/build-images.sh.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
RUN groupadd --gid 1000 appuser \
 && useradd --no-log-init --uid 1000 --gid appuser --home-dir /opt/kafka --no-create-home \
        --shell /usr/sbin/nologin appuser \
 && mkdir -p /opt/kafka/config /var/lib/kafka/data \
 && chown -R appuser:appuser /opt/kafka /var/lib/kafka
COPY libs/ /opt/kafka/libs/
COPY log4j2.xml kafka-entrypoint.py /opt/kafka/
USER appuser
WORKDIR /opt/kafka
VOLUME ["/var/lib/kafka/data"]
EXPOSE 9092 9093
ENTRYPOINT ["python3", "/opt/kafka/kafka-entrypoint.py"]
