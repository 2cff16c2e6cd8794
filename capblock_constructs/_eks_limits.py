"""The limits the EKS API puts on a managed node group's labels and taints.

They are tighter than Kubernetes' own: a label key is at most 63 characters in
total, prefix included, and a label value may not be empty. A managed node group
that breaks them synthesizes and then fails at deploy, so both the construct and
the template rules check them, from these numbers.

Source: botocore's EKS service model (shapes ``labelKey``, ``labelValue``,
``taintKey``, ``taintValue``) and the EKS API reference, "Taint" ("maximum of 50
taints per node group").

Two other AWS sources are looser about taint keys: the EKS user guide page on
managed node group taints repeats Kubernetes' rule (a key with a DNS subdomain
prefix may be 253 characters long), and CloudFormation's schema for
``AWS::EKS::Nodegroup`` allows 317. CloudFormation creates the group through the
EKS API, whose model and reference both say 63, so a longer key fails at deploy;
the checks follow the API.
"""

from __future__ import annotations

EKS_LABEL_KEY_LENGTH = (1, 63)
"""Fewest and most characters in a managed node group's label key, prefix included."""

EKS_LABEL_VALUE_LENGTH = (1, 63)
"""Fewest and most characters in a managed node group's label value."""

EKS_TAINT_KEY_LENGTH = (1, 63)
"""Fewest and most characters in a managed node group's taint key."""

EKS_TAINT_VALUE_LENGTH = (0, 63)
"""Fewest and most characters in a managed node group's taint value (it may be empty)."""

EKS_MAX_TAINTS = 50
"""Most taints one managed node group may carry."""
