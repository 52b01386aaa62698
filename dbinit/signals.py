"""Signal receivers (connected by DbinitConfig.ready)."""


def connect(app_config):
    pass
