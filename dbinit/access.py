"""Who may see diagnostic details (ids, messages, hints) in probes and status pages."""


def may_see_details(request) -> bool:
    """Active staff users; anonymous clients (load balancers, kubelets, the internet) get status only."""
    return bool(getattr(request, "user", None) and request.user.is_active and request.user.is_staff)
